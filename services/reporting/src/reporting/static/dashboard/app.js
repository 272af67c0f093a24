/* The reporting dashboard: figures from /v1/metrics, live updates from the SSE stream, ECharts served
   by the service itself. Authentication: a reporting:read token pasted once (kept in localStorage) is
   sent as a Bearer header to the API; the stream uses a short-lived stream-only token obtained from
   POST /v1/dashboard/session, since EventSource cannot send headers. A link ending in #token=… signs in
   the same way without pasting. */
(function () {
  "use strict";

  const I18N = {
    zh: {
      title: "国际科技交流 · 实时概览", year: "年度", allYears: "全部年度", signout: "退出", login: "请输入访问令牌",
      loginHelp: "粘贴具有 reporting:read 权限的令牌（只需一次，保存在本浏览器中）。", signin: "进入",
      badToken: "令牌无效或缺少 reporting:read 权限", live: "实时", reconnecting: "正在重新连接…", offline: "离线",
      chartByRegion: "各地区活动与参加人数", chartTrend: "逐年趋势", chartRoles: "国际组织任职（按职务）",
      footer: "数据实时更新；离线可用（ECharts 由本服务提供）。",
      kinds: { "": "全部", world: "世界地区", group: "国家集团", province: "省份", national: "全国性组织", all: "总计" },
      cols: { code: "代码", name: "地区" },
      targets: { partners: "合作伙伴组织", agreements: "合作协议", people: "人才库人数", organizations: "组织库数量", flagship_projects: "品牌项目" },
      by: { event_types: "活动（按类型）", groups: "人才（按群体）", roles: "国际任职（按职务）" }, noData: "暂无数据", updated: "更新于",
      participants: "参加人数", events: "活动", agreements: "协议", detail: "地区详情",
    },
    en: {
      title: "International S&T exchange · live overview", year: "Year", allYears: "All years", signout: "Sign out",
      login: "Paste an access token", loginHelp: "Paste a token with the reporting:read scope (once; kept in this browser).",
      signin: "Open", badToken: "The token is invalid or lacks reporting:read", live: "Live",
      reconnecting: "Reconnecting…", offline: "Offline", chartByRegion: "Events and participants by region",
      chartTrend: "Year-over-year trend", chartRoles: "Posts in international organizations by role",
      footer: "Figures update live; works offline (ECharts is served by this service).",
      kinds: { "": "All", world: "World regions", group: "Groups", province: "Provinces", national: "National bodies", all: "Total" },
      cols: { code: "Code", name: "Region" },
      targets: { partners: "Partner organizations", agreements: "Agreements", people: "People in the pools", organizations: "Organizations", flagship_projects: "Flagship projects" },
      by: { event_types: "Events by type", groups: "People by group", roles: "Posts by role" }, noData: "No data yet", updated: "Updated",
      participants: "Participants", events: "Events", agreements: "Agreements", detail: "Region detail",
    },
  };
  // Which figures show where (the table's columns, the headline cards, the detail's breakdowns): the metrics
  // catalogue's `dashboard` layout, read with the labels from labels.json.
  let FIGURES = [], TOTALS = [], BREAKDOWNS = [];

  // A link such as `make run` prints, /dashboard/#token=…, signs in: the fragment never reaches the server,
  // and it leaves the address bar (and the history) at once.
  const linked = new URLSearchParams(location.hash.slice(1)).get("token");
  if (linked) {
    localStorage.setItem("reporting.token", linked);
    history.replaceState(null, "", location.pathname + location.search);
  }

  const state = {
    token: localStorage.getItem("reporting.token"),
    lang: localStorage.getItem("reporting.lang") || "zh",
    year: "", kind: "province", regions: [], byCode: {}, figures: {},
    sort: { key: "events.count", dir: "desc" }, selected: "all",
    source: null, lastEventId: null, retry: 1000, charts: {}, chartTimer: null, targetsTimer: null, updatedAt: null,
  };
  const $ = (id) => document.getElementById(id);
  const t = (key) => I18N[state.lang][key];
  const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const locale = () => (state.lang === "zh" ? "zh-CN" : "en-US");
  const fmt = (n) => (n == null ? "–" : Number(n).toLocaleString(locale()));
  // Every element is built from text nodes and attributes, never from markup: no value read from the API
  // (a region code, a target key, a label) is ever parsed as HTML, and the page's CSP allows no inline code.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
    return node;
  }
  // A key without a label (a type added after this page was written): "study_tour" reads "Study tour".
  const readable = (key) => {
    const s = String(key).replace(/[_.\-]+/g, " ").trim();
    return s ? s[0].toUpperCase() + s.slice(1) : String(key);
  };
  const label = (dict, key) => t(dict)[key] || readable(key);
  const regionName = (code) => {
    const r = state.byCode[code];
    return r ? (state.lang === "zh" ? r.name_zh : r.name) : code;
  };

  async function api(path, options = {}) {
    const response = await fetch(path, {
      ...options, headers: { Authorization: "Bearer " + state.token, ...(options.headers || {}) },
    });
    if (response.status === 401 || response.status === 403) throw Object.assign(new Error("auth"), { auth: true });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function setStatus(s) {
    const el = $("status");
    el.dataset.state = s;
    el.textContent = t(s);
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("lang").textContent = state.lang === "zh" ? "English" : "中文";
    setStatus($("status").dataset.state || "offline");
    fillYears();
    renderAll();
  }

  function fillYears() {
    const select = $("year");
    const now = new Date().getFullYear();
    const options = [["", t("allYears")]];
    for (let y = now + 1; y >= now - 8; y--) options.push([String(y), String(y)]);
    select.replaceChildren(...options.map(([v, text]) => h("option", { value: v }, text)));
    select.value = state.year;
  }

  // --- rendering -------------------------------------------------------------------------------
  function renderAll() {
    if (!state.regions.length) return;
    renderTotals();
    renderKinds();
    renderTable();
    renderDetail();
    scheduleCharts(0);
  }

  function renderTotals() {
    const all = state.figures.all || {};
    $("totals").replaceChildren(...TOTALS.map((key) => h("div", { class: "card" },
      h("div", { class: "label" }, t("cols")[key]),
      h("div", { class: "value", "data-testid": `total-${key}` }, fmt(get(all, key))))));
    renderUpdated();
  }

  // "Updated 14:03:07" (with the date when not today): when the figures last changed or were read.
  function touch(asOf) {
    const when = asOf ? new Date(asOf) : new Date();
    if (!isNaN(when) && (!state.updatedAt || when > state.updatedAt)) state.updatedAt = when;
    renderUpdated();
  }

  function renderUpdated() {
    const when = state.updatedAt;
    if (!when) { $("as-of").textContent = ""; return; }
    const today = when.toDateString() === new Date().toDateString();
    const text = today ? when.toLocaleTimeString(locale(), { hourCycle: "h23" })
      : when.toLocaleString(locale(), { hourCycle: "h23" });
    $("as-of").textContent = `${t("updated")} ${text}`;
    $("as-of").dateTime = when.toISOString();
  }

  function renderTargets(data) {
    $("targets").replaceChildren(...data.targets.map((item) => {
      const pct = Math.round(Number(item.progress) * 100) || 0;
      const fill = h("div");
      fill.style.width = `${Math.max(0, Math.min(pct, 100))}%`;  // CSSOM, not a style attribute: allowed by the CSP
      return h("div", { class: "card" },
        h("div", { class: "label" }, t("targets")[item.key] || item.key),
        h("div", { class: "value", "data-testid": `target-${item.key}` }, `${fmt(item.value)} `, h("small", {}, `/ ${fmt(item.target)}`)),
        h("div", { class: "bar" }, fill),
        h("div", { class: "label" }, `${pct}%`));
    }));
  }

  function renderKinds() {
    const kinds = ["", "world", "group", "province", "national"];
    $("kinds").replaceChildren(...kinds.map((k) =>
      h("button", { type: "button", "data-kind": k, "aria-pressed": state.kind === k }, t("kinds")[k])));
    $("kinds").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      state.kind = b.dataset.kind; renderKinds(); renderTable(); scheduleCharts(0);
    }));
  }

  function visibleRegions() {
    const rows = state.regions.filter((r) => !state.kind || r.kind === state.kind);
    const { key, dir } = state.sort;
    const sign = dir === "asc" ? 1 : -1;
    return rows.slice().sort((a, b) => {
      let va, vb;
      if (key === "code") { va = a.code; vb = b.code; } else if (key === "name") { va = regionName(a.code); vb = regionName(b.code); } else {
        va = get(state.figures[a.code], key) || 0; vb = get(state.figures[b.code], key) || 0;
      }
      return va < vb ? -sign : va > vb ? sign : 0;
    });
  }

  function renderTable() {
    const cols = ["code", "name", ...FIGURES];
    const sorted = (c) => (state.sort.key === c ? (state.sort.dir === "asc" ? "ascending" : "descending") : "none");
    $("regions").querySelector("thead").replaceChildren(
      h("tr", {}, ...cols.map((c) => h("th", { "data-key": c, "aria-sort": sorted(c) }, t("cols")[c]))));
    $("regions").querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
      const key = th.dataset.key;
      state.sort = { key, dir: state.sort.key === key && state.sort.dir === "desc" ? "asc" : "desc" };
      renderTable();
    }));
    $("regions").querySelector("tbody").replaceChildren(...visibleRegions().map((r) => {
      const f = state.figures[r.code];
      return h("tr", { "data-region": r.code, class: r.code === state.selected ? "selected" : "" },
        h("td", {}, r.code), h("td", {}, regionName(r.code)),
        ...FIGURES.map((key) => h("td", { "data-key": key, "data-testid": `cell-${r.code}-${key}` }, fmt(get(f, key)))));
    }));
    $("regions").querySelectorAll("tbody tr").forEach((tr) => tr.addEventListener("click", () => select(tr.dataset.region)));
  }

  function updateRow(obj) {
    const tr = document.querySelector(`tr[data-region="${CSS.escape(obj.region)}"]`);
    if (!tr) return;
    tr.querySelectorAll("td[data-key]").forEach((td) => {
      const text = fmt(get(obj, td.dataset.key));
      if (td.textContent !== text) {
        td.textContent = text;
        td.classList.remove("flash"); void td.offsetWidth; td.classList.add("flash");
      }
    });
  }

  function renderDetail() {
    const code = state.selected;
    const f = state.figures[code];
    if (!f) { $("detail").replaceChildren(); return; }
    const item = (key, name, v) => h("div", {}, h("dt", {}, name), h("dd", { "data-testid": `detail-${key}` }, fmt(v)));
    $("detail").replaceChildren(
      h("h3", {}, `${t("detail")}: ${regionName(code)} `, h("small", {}, code)),
      h("dl", {}, ...FIGURES.map((k) => item(k, t("cols")[k], get(f, k)))),
      ...BREAKDOWNS.flatMap(([path, dict]) => [
        h("h4", {}, t("by")[dict] || t("cols")[path]),
        h("dl", {}, ...Object.entries(get(f, path) || {}).map(([k, v]) => item(`${path}.${k}`, label(dict, k), v))),
      ]));
    $("trend-region").textContent = regionName(code);
    $("roles-region").textContent = regionName(code);
  }

  function select(code) {
    state.selected = code;
    document.querySelectorAll("tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.region === code));
    renderDetail();
    scheduleCharts(0);
  }

  // --- charts ----------------------------------------------------------------------------------
  function chart(id) {
    if (!state.charts[id]) state.charts[id] = echarts.init($(id), "dark", { renderer: "canvas" });
    return state.charts[id];
  }

  // A chart with nothing to show says so ("暂无数据 / No data yet") instead of drawing empty axes or a grey ring.
  function draw(id, option, empty) {
    $(id).parentElement.querySelector(".empty").hidden = !empty;
    chart(id).setOption(empty ? { backgroundColor: "transparent" } : option, true);  // clear() would paint the theme's background
  }

  function scheduleCharts(delay) {
    clearTimeout(state.chartTimer);
    state.chartTimer = setTimeout(renderCharts, delay === undefined ? 500 : delay);
  }

  async function renderCharts() {
    if (typeof echarts === "undefined" || !state.regions.length) return;
    const rows = visibleRegions().filter((r) => r.code !== "all")
      .sort((a, b) => (get(state.figures[b.code], "events.count") || 0) - (get(state.figures[a.code], "events.count") || 0))
      .slice(0, 15);
    const events = rows.map((r) => get(state.figures[r.code], "events.count") || 0);
    const participants = rows.map((r) => get(state.figures[r.code], "events.participants") || 0);
    const numbers = { formatter: (v) => fmt(v) };  // with thousands separators; counts have no fractional ticks (minInterval)
    draw("chart-regions", {
      backgroundColor: "transparent", tooltip: { trigger: "axis", valueFormatter: fmt },
      legend: { data: [t("events"), t("participants")] },
      grid: { left: 50, right: 60, bottom: 80, top: 30 },
      xAxis: { type: "category", data: rows.map((r) => regionName(r.code)), axisLabel: { rotate: 40 } },
      yAxis: [{ type: "value", name: t("events"), minInterval: 1, axisLabel: numbers },
        { type: "value", name: t("participants"), minInterval: 1, axisLabel: numbers }],
      series: [
        { name: t("events"), type: "bar", data: events },
        { name: t("participants"), type: "line", yAxisIndex: 1, data: participants },
      ],
    }, !events.some((v) => v > 0) && !participants.some((v) => v > 0));
    const f = state.figures[state.selected];
    const roles = Object.entries(get(f, "talent.posts_by_role") || {}).filter(([, v]) => v > 0);
    draw("chart-roles", {
      backgroundColor: "transparent", tooltip: { trigger: "item", valueFormatter: fmt },
      series: [{ type: "pie", radius: ["35%", "70%"], data: roles.map(([k, v]) => ({ name: label("roles", k), value: v })) }],
    }, !roles.length);
    try {
      const trend = await api(`/v1/metrics/regions/${encodeURIComponent(state.selected)}/trend`);
      // Every year from the first to the last on the axis, a year without data as 0, so a gap keeps its width
      // (2026, 2031 and 2035 are not drawn evenly spaced); straight segments never dip below zero.
      const byYear = Object.fromEntries(trend.years.map((y) => [y.year, y]));
      const known = trend.years.map((y) => Number(y.year));
      const years = [];
      for (let y = Math.min(...known); y <= Math.max(...known); y++) years.push(y);
      const series = (key) => years.map((y) => (byYear[y] && byYear[y][key]) || 0);
      draw("chart-trend", {
        backgroundColor: "transparent", tooltip: { trigger: "axis", valueFormatter: fmt },
        legend: { data: [t("events"), t("agreements")] },
        grid: { left: 50, right: 20, bottom: 30, top: 30 },
        xAxis: { type: "category", boundaryGap: false, data: years.map(String) },
        yAxis: { type: "value", min: 0, minInterval: 1, axisLabel: numbers },
        series: [
          { name: t("events"), type: "line", smooth: false, data: series("count") },
          { name: t("agreements"), type: "line", smooth: false, data: series("agreements_signed") },
        ],
      }, !trend.years.some((y) => y.count || y.agreements_signed));
    } catch (err) { if (err.auth) signOut(); }
  }

  // --- data ------------------------------------------------------------------------------------
  const yearQuery = () => (state.year ? `?year=${state.year}` : "");

  async function loadTargets() {
    try { renderTargets(await api("/v1/targets" + yearQuery())); } catch (err) { if (err.auth) signOut(); }
  }

  async function load() {
    const [regions, metrics] = await Promise.all([api("/v1/regions"), api("/v1/metrics" + yearQuery())]);
    state.regions = regions.items;
    state.byCode = Object.fromEntries(regions.items.map((r) => [r.code, r]));
    state.figures = Object.fromEntries(metrics.regions.map((o) => [o.region, o]));
    state.updatedAt = null;
    touch(state.figures.all && state.figures.all.as_of);
    renderAll();
    loadTargets();
  }

  function onMetrics(obj) {
    state.figures[obj.region] = obj;
    touch(obj.as_of);
    updateRow(obj);
    if (obj.region === "all") {
      renderTotals();
      clearTimeout(state.targetsTimer);
      state.targetsTimer = setTimeout(loadTargets, 1000);
    }
    if (obj.region === state.selected) renderDetail();
    scheduleCharts();
  }

  async function connect() {
    if (state.source) { state.source.close(); state.source = null; }
    let session;
    try {
      session = await api("/v1/dashboard/session", { method: "POST" });
    } catch (err) {
      if (err.auth) { signOut(); return; }
      setStatus("reconnecting");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 15000);
      return;
    }
    const params = new URLSearchParams({ access_token: session.access_token });
    if (state.year) params.set("year", state.year);
    if (state.lastEventId) params.set("last_event_id", state.lastEventId);
    const source = new EventSource("/v1/metrics/stream?" + params.toString());
    state.source = source;
    source.onopen = () => { state.retry = 1000; setStatus("live"); };
    source.addEventListener("metrics", (e) => {
      if (e.lastEventId) state.lastEventId = e.lastEventId;
      onMetrics(JSON.parse(e.data));
    });
    source.onerror = () => {
      setStatus("reconnecting");
      if (source.readyState === EventSource.CLOSED) {  // e.g. the short-lived token expired: get a new one
        setTimeout(() => { if (state.source === source) connect(); }, state.retry);
        state.retry = Math.min(state.retry * 2, 15000);
      }
    };
  }

  function signOut() {
    localStorage.removeItem("reporting.token");
    state.token = null;
    if (state.source) state.source.close();
    $("main").hidden = true;
    $("login").hidden = false;
    setStatus("offline");
  }

  async function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    try {
      await load();
      await connect();
    } catch (err) {
      if (err.auth) { signOut(); $("login-error").textContent = t("badToken"); return; }
      setStatus("reconnecting");
      setTimeout(start, 2000);
    }
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (!value) return;
    state.token = value;
    localStorage.setItem("reporting.token", value);
    $("login-error").textContent = "";
    start();
  });
  $("signout").addEventListener("click", signOut);
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("reporting.lang", state.lang);
    applyLanguage();
    scheduleCharts(0);
    loadTargets();  // the target cards carry labels too
  });
  $("year").addEventListener("change", () => {
    state.year = $("year").value;
    state.lastEventId = null;
    load().then(connect);
  });
  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));

  // The metrics' labels (as column headings) and the event types, talent groups and post roles, in both
  // languages: served from the service's metrics catalogue, which the API and the annual report read too.
  async function loadLabels() {
    for (const lang of Object.keys(I18N)) Object.assign(I18N[lang], { event_types: {}, groups: {}, roles: {} });
    try {
      const { dashboard, ...labels } = await (await fetch("labels.json")).json();
      ({ table: FIGURES, cards: TOTALS, breakdowns: BREAKDOWNS } = dashboard);
      for (const [dict, entries] of Object.entries(labels)) {
        for (const [key, names] of Object.entries(entries)) {
          for (const lang of Object.keys(I18N)) {
            const target = dict === "metrics" ? "cols" : dict;
            I18N[lang][target] = I18N[lang][target] || {};
            I18N[lang][target][key] = names[lang];
          }
        }
      }
    } catch (err) {
      console.warn("labels.json could not be read; keys are shown readably", err);
    }
  }

  loadLabels().then(() => {
    applyLanguage();
    if (state.token) start(); else { $("login").hidden = false; setStatus("offline"); }
  });
})();
