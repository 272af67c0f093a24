"""The demo dataset: a seeded, realistic year of exchange activity, loaded through the public APIs.

Modelled on the figures of ../shared/domain/DOMAIN.md: about 150 partner organizations in every world
region (some with ROR-style ids), about 120 agreements of every kind (some expired, some expiring within
90 days), about 2,300 events across the 31 provinces and the national bodies with the 2015 ratios of
participants, foreign participants and papers, and 10,000 people in 50 national societies holding about
530 posts in international organizations (34 presidents, 48 vice-presidents, 78 executive-board seats).
`--scale` multiplies every count (benchmarks load more, tests less).

Everything goes in through the services' HTTP APIs, each write with a token of the body concerned and the
least scope it needs (a province posts its own events and signs its own agreements, a society syncs its own
people, HQ records the organizations and its agreements; nobody needs `admin`), never into a database.
Loading is idempotent: organizations are found again by name (409 naming the existing id), events and
agreements by `external_ref`, people by `external_id` in a full sync, so a second load adds nothing. The
events and people are those of one fixed year (`DEMO_YEAR`), never the calendar's: a load in a new year
sends the same dataset as the last. Only the agreements' dates follow the day of the load, so that some are
always expired or expiring soon.

    uv run python deploy/local/demo.py --scale 0.5      # against a running `make run`
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

SEED = 20250101
# The year of the events and of the latest posts. Fixed, not today's year: the dataset, and so a second load
# finding everything there, must not change on 1 January.
DEMO_YEAR = 2026
# The share of agreements a province signs itself (with its own token); HQ signs the rest.
PROVINCE_SIGNED = 0.25
# DOMAIN.md: the 2023–2025 plan's targets and the 2015 figures (2,278 conferences, 577,000 participants of
# whom 43,000 from abroad, 96,000 papers; 530+ posts of which 34 presidents, 48 vice-presidents, 78 board).
ORGANIZATIONS, AGREEMENTS, EVENTS, PEOPLE, SOCIETIES = 150, 120, 2300, 10_000, 50
PARTICIPANTS_PER_EVENT = 577_000 / 2_278
FOREIGN_SHARE = 43_000 / 577_000
PAPERS_PER_EVENT = 96_000 / 2_278
POSTS = {"president": 34, "vice_president": 48, "executive_board": 78}
OTHER_POSTS = {"secretary_general": 40, "committee_chair": 120, "member": 160, "other": 50}  # 530 in all

# The 31 provincial-level divisions of the mainland (GB/T 2260) with a rough weight for their activity.
PROVINCES = {
    "110000": 12,
    "120000": 4,
    "130000": 3,
    "140000": 2,
    "150000": 1,
    "210000": 3,
    "220000": 2,
    "230000": 2,
    "310000": 11,
    "320000": 8,
    "330000": 6,
    "340000": 3,
    "350000": 3,
    "360000": 2,
    "370000": 4,
    "410000": 3,
    "420000": 5,
    "430000": 3,
    "440000": 9,
    "450000": 2,
    "460000": 2,
    "500000": 3,
    "510000": 4,
    "520000": 1,
    "530000": 2,
    "540000": 1,
    "610000": 3,
    "620000": 1,
    "630000": 1,
    "640000": 1,
    "650000": 2,
}

# Countries by world region: (alpha-2, English name, Chinese name, weight as a partner).
COUNTRIES = [
    # Europe
    ("GB", "United Kingdom", "英国", 6),
    ("DE", "Germany", "德国", 6),
    ("FR", "France", "法国", 5),
    ("IT", "Italy", "意大利", 3),
    ("ES", "Spain", "西班牙", 2),
    ("NL", "Netherlands", "荷兰", 2),
    ("SE", "Sweden", "瑞典", 2),
    ("FI", "Finland", "芬兰", 2),
    ("NO", "Norway", "挪威", 1),
    ("DK", "Denmark", "丹麦", 1),
    ("CH", "Switzerland", "瑞士", 2),
    ("AT", "Austria", "奥地利", 1),
    ("PL", "Poland", "波兰", 1),
    ("RU", "Russia", "俄罗斯", 6),
    ("BY", "Belarus", "白俄罗斯", 1),
    ("HU", "Hungary", "匈牙利", 1),
    ("RS", "Serbia", "塞尔维亚", 1),
    ("GR", "Greece", "希腊", 1),
    ("PT", "Portugal", "葡萄牙", 1),
    # Americas
    ("US", "United States", "美国", 7),
    ("CA", "Canada", "加拿大", 3),
    ("MX", "Mexico", "墨西哥", 1),
    ("BR", "Brazil", "巴西", 2),
    ("AR", "Argentina", "阿根廷", 1),
    ("CL", "Chile", "智利", 1),
    ("PE", "Peru", "秘鲁", 1),
    ("CU", "Cuba", "古巴", 1),
    # Asia
    ("JP", "Japan", "日本", 6),
    ("KR", "Korea", "韩国", 5),
    ("MN", "Mongolia", "蒙古", 1),
    ("SG", "Singapore", "新加坡", 2),
    ("MY", "Malaysia", "马来西亚", 2),
    ("TH", "Thailand", "泰国", 2),
    ("VN", "Viet Nam", "越南", 2),
    ("LA", "Lao PDR", "老挝", 1),
    ("KH", "Cambodia", "柬埔寨", 1),
    ("MM", "Myanmar", "缅甸", 1),
    ("ID", "Indonesia", "印度尼西亚", 2),
    ("PH", "Philippines", "菲律宾", 1),
    ("IN", "India", "印度", 2),
    ("PK", "Pakistan", "巴基斯坦", 2),
    ("BD", "Bangladesh", "孟加拉国", 1),
    ("LK", "Sri Lanka", "斯里兰卡", 1),
    ("NP", "Nepal", "尼泊尔", 1),
    ("KZ", "Kazakhstan", "哈萨克斯坦", 2),
    ("UZ", "Uzbekistan", "乌兹别克斯坦", 1),
    ("KG", "Kyrgyzstan", "吉尔吉斯斯坦", 1),
    ("TJ", "Tajikistan", "塔吉克斯坦", 1),
    ("IR", "Iran", "伊朗", 1),
    ("TR", "Türkiye", "土耳其", 1),
    ("SA", "Saudi Arabia", "沙特阿拉伯", 1),
    ("AE", "United Arab Emirates", "阿联酋", 1),
    ("IL", "Israel", "以色列", 1),
    ("HK", "Hong Kong", "香港", 2),
    ("MO", "Macao", "澳门", 1),
    ("TW", "Taiwan", "台湾", 1),
    # Africa
    ("EG", "Egypt", "埃及", 2),
    ("ZA", "South Africa", "南非", 2),
    ("NG", "Nigeria", "尼日利亚", 1),
    ("KE", "Kenya", "肯尼亚", 1),
    ("ET", "Ethiopia", "埃塞俄比亚", 1),
    ("MA", "Morocco", "摩洛哥", 1),
    ("DZ", "Algeria", "阿尔及利亚", 1),
    ("TZ", "Tanzania", "坦桑尼亚", 1),
    ("GH", "Ghana", "加纳", 1),
    # Oceania
    ("AU", "Australia", "澳大利亚", 3),
    ("NZ", "New Zealand", "新西兰", 1),
    ("FJ", "Fiji", "斐济", 1),
]

ORG_TEMPLATES = [  # (English, Chinese, kind)
    ("{} Academy of Sciences", "{}科学院", "academy"),
    ("{} Academy of Engineering", "{}工程院", "academy"),
    ("{} Association for the Advancement of Science", "{}科学促进会", "society"),
    ("{} Federation of Engineering Institutions", "{}工程组织联合会", "engineering_body"),
    ("{} Physical Society", "{}物理学会", "society"),
    ("{} Chemical Society", "{}化学会", "society"),
    ("National University of {}", "{}国立大学", "university"),
    ("{} Research Foundation", "{}研究基金会", "foundation"),
    ("{} Ministry of Science and Technology", "{}科技部", "government"),
    ("{} Science Museum Association", "{}科技馆协会", "other"),
    ("{} Institute of Technology", "{}理工学院", "university"),
    ("{} Engineering Company Association", "{}工程企业协会", "company"),
]
# International organizations named in the seeds, and their seats (for posts held in them).
INTERNATIONAL = [
    ("World Federation of Engineering Organizations", "世界工程组织联合会", "WFEO", "FR"),
    ("International Science Council", "国际科学理事会", "ISC", "FR"),
    ("Pacific Science Association", "太平洋科学协会", "PSA", "US"),
    ("Science Council of Asia", "亚洲科学理事会", "SCA", "JP"),
    ("World Federation of Scientific Workers", "世界科学工作者协会", "WFSW", "GB"),
    ("Federation of Engineering Institutions of Asia and the Pacific", "亚太工程组织联合会", "FEIAP", "MY"),
    ("International Union of Pure and Applied Chemistry", "国际纯粹与应用化学联合会", "IUPAC", "US"),
    ("International Union of Pure and Applied Physics", "国际纯粹与应用物理联合会", "IUPAP", "SG"),
    ("International Astronautical Federation", "国际宇航联合会", "IAF", "FR"),
    ("International Council on Large Electric Systems", "国际大电网委员会", "CIGRE", "FR"),
    ("International Federation of Automatic Control", "国际自动控制联合会", "IFAC", "AT"),
    ("International Mathematical Union", "国际数学联盟", "IMU", "DE"),
]
# Real organizations of the seeds, with the Royal Society's real ROR id.
NAMED = [
    ("The Royal Society", "英国皇家学会", "GB", "academy", "03wnrjx87"),
    ("American Association for the Advancement of Science", "美国科学促进会", "US", "society", None),
    ("Japan Science and Technology Agency", "日本科学技术振兴机构", "JP", "government", None),
    ("Science Council of Japan", "日本学术会议", "JP", "academy", None),
    (
        "Russian Union of Scientific and Engineering Associations",
        "俄罗斯科学与工程协会联盟",
        "RU",
        "engineering_body",
        None,
    ),
]
AGREEMENT_KINDS = {"mou": 4, "cooperation_agreement": 4, "letter_of_intent": 2, "minutes": 2, "mutual_recognition": 1}
FIELDS = [
    "information_exchange",
    "journal_exchange",
    "delegation_visits",
    "training",
    "joint_research",
    "conferences",
    "science_popularisation",
]
TOPICS = [
    "energy",
    "materials",
    "artificial intelligence",
    "climate",
    "public health",
    "agriculture",
    "oceans",
    "space",
    "engineering education",
    "biodiversity",
    "digital economy",
    "water resources",
]
EVENT_TYPES = {
    "conference": 55,
    "forum": 12,
    "dialogue": 4,
    "delegation_in": 8,
    "delegation_out": 7,
    "youth_camp": 3,
    "exhibition": 3,
    "training": 4,
    "online": 3,
    "other": 1,
}
TITLES = {
    "conference": "International Conference on {}",
    "forum": "China–{} Forum on {}",
    "dialogue": "China–{} Scientist Dialogue on {}",
    "delegation_in": "Delegation from {} on {}",
    "delegation_out": "Delegation to {} on {}",
    "youth_camp": "Youth Science Camp: {}",
    "exhibition": "Travelling exhibition: {}",
    "training": "Training course on {}",
    "online": "Online seminar on {}",
    "other": "Exchange on {}",
}
SOCIETY_CODES = [
    "CMES",
    "CCS",
    "CSEE",
    "CIE",
    "CSAA",
    "CSTAM",
    "CPS",
    "CMS",
    "CHEMS",
    "CGS",
    "CSES",
    "CAS-A",
    "CSPE",
    "CSAE",
    "CSNAME",
    "CSCE",
    "CHES",
    "CSTE",
    "CAA",
    "CSM",
    "CSRME",
    "CSMSE",
    "CGSG",
    "CMetS",
    "COS",
    "CSO",
    "CSIAM",
    "CBS",
    "CSB",
    "CSCB",
    "CSPP",
    "CNS",
    "CSBME",
    "CMA",
    "CPA",
    "CSF",
    "CSAS",
    "CSHS",
    "CSSS",
    "CSNR",
    "CSER",
    "CSAI",
    "CAAI",
    "CSIG",
    "CSGPC",
    "CSHE",
    "CSTS",
    "CSWR",
    "CSOE",
    "CSRS",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国志红玉兰春晓文斌宇浩然思远嘉欣雨婷子涵博文泽宇梓萱晨轩"
GROUPS = {
    "leading_scientist": 8,
    "engineer": 30,
    "young_scientist": 30,
    "woman_scientist": 15,
    "youth": 10,
    "overseas_expert": 7,
}
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale)) if scale > 0 else 0


def ror_check_digits(body: str) -> str:
    """ROR's two check digits (ISO 7064 Mod 97-10) of the six base-32 characters after the leading 0."""
    number = 0
    for char in body:
        number = number * 32 + CROCKFORD.index(char)
    return f"{98 - (number * 100) % 97:02d}"


def make_ror_id(rng: random.Random) -> str:
    body = "".join(rng.choice(CROCKFORD) for _ in range(6))
    return f"0{body}{ror_check_digits(body)}"


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` sizes falling off like a long tail (a few large societies, many small)."""
    weights = [1 / (i + 1) ** 0.7 * rng.uniform(0.8, 1.2) for i in range(parts)]
    sizes = [int(total * w / sum(weights)) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % parts] += 1
    return sizes


@dataclass
class Dataset:
    organizations: list[dict[str, Any]] = field(default_factory=list)  # each with a "key" the agreements name
    # "partners": keys of organizations; "signer": the signing body (kind, code), whose token records it
    agreements: list[dict[str, Any]] = field(default_factory=list)
    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # by organizer (kind, code)
    talent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by society code

    @property
    def event_count(self) -> int:
        return sum(len(items) for items in self.events.values())

    @property
    def people_count(self) -> int:
        return sum(len(items) for items in self.talent.values())


def generate(scale: float = 1.0, year: int = DEMO_YEAR, today: date | None = None, seed: int = SEED) -> Dataset:
    """The dataset for `year` (its events start in it), with agreements' expiry dates spread around
    `today` (default: 1 July of `year`). The same arguments give the same dataset."""
    today = today or date(year, 7, 1)

    # A generator per part, none seeded with `today`: a load on another day sends the same organizations,
    # events and people (found unchanged); only the agreements' dates move with it (found by external_ref).
    def rng(part: str) -> random.Random:
        return random.Random(f"{seed}:{scale}:{year}:{part}")

    data = Dataset()
    _organizations(data, rng("organizations"), scaled(ORGANIZATIONS, scale))
    _agreements(data, rng("agreements"), scaled(AGREEMENTS, scale), today)
    _signers(data, rng("signers"))
    _events(data, rng("events"), scaled(EVENTS, scale), year)
    _talent(data, rng("talent"), scaled(PEOPLE, scale), scale, year)
    return data


def _organizations(data: Dataset, rng: random.Random, count: int) -> None:
    names: set[tuple[str, str | None]] = set()

    def add(name: str, name_zh: str, country: str | None, kind: str, ror: str | None) -> None:
        if len(data.organizations) < count and (name.lower(), country) not in names:
            names.add((name.lower(), country))
            org: dict[str, Any] = {"key": f"org-{len(data.organizations):04d}", "name": name, "name_zh": name_zh}
            org |= {"country": country, "kind": kind}
            if ror:
                org["ror_id"] = ror
            data.organizations.append(org)

    for name, name_zh, country, kind, ror in NAMED:
        add(name, name_zh, country, kind, ror)
    for name, name_zh, _, _ in INTERNATIONAL[: max(1, count // 25)]:
        add(name, name_zh, None, "international_org", None)
    # Every country once first ("full coverage of key countries in every region"), then by weight.
    order = [c for c in COUNTRIES] + rng.choices(COUNTRIES, weights=[c[3] for c in COUNTRIES], k=count * 3)
    for code, country_en, country_zh, _ in order:
        if len(data.organizations) >= count:
            break
        en, zh, kind = rng.choice(ORG_TEMPLATES)
        add(en.format(country_en), zh.format(country_zh), code, kind, make_ror_id(rng) if rng.random() < 0.4 else None)


def _agreements(data: Dataset, rng: random.Random, count: int, today: date) -> None:
    keys = [org["key"] for org in data.organizations]
    for n in range(count):
        kind = _weighted(rng, AGREEMENT_KINDS)
        partners = sorted(set(rng.sample(keys, min(len(keys), 1 if rng.random() < 0.85 else 2))))
        # ~10% already expired, ~12% expiring within 90 days, ~10% open-ended, the rest later.
        roll = rng.random()
        if roll < 0.10:
            expires: date | None = today - timedelta(days=rng.randint(1, 500))
        elif roll < 0.22:
            expires = today + timedelta(days=rng.randint(1, 89))
        elif roll < 0.32:
            expires = None
        else:
            expires = today + timedelta(days=rng.randint(120, 1800))
        term = timedelta(days=365 * rng.choice((3, 4, 5)))
        signed = (expires - term) if expires else today - timedelta(days=rng.randint(30, 2000))
        signed = min(signed, today - timedelta(days=1))
        org = next(o for o in data.organizations if o["key"] == partners[0])
        title = {
            "mou": "Memorandum of understanding with {}",
            "cooperation_agreement": "Cooperation agreement with {}",
            "letter_of_intent": "Letter of intent on joint symposia with {}",
            "minutes": "Minutes of talks with {}",
            "mutual_recognition": "Mutual recognition of engineer qualifications with {}",
        }[kind].format(org["name"])
        agreement: dict[str, Any] = {"external_ref": f"DEMO-AGR-{n + 1:04d}", "title": title[:300], "kind": kind}
        agreement |= {"partners": partners, "signed_on": signed.isoformat(), "fields": rng.sample(FIELDS, 2)}
        if expires:
            agreement["expires_on"] = expires.isoformat()
        if rng.random() < 0.08:
            agreement["flagship"] = True
        data.agreements.append(agreement)


def _signers(data: Dataset, rng: random.Random) -> None:
    for agreement in data.agreements:
        province = rng.random() < PROVINCE_SIGNED
        agreement["signer"] = ("province", _weighted(rng, PROVINCES)) if province else ("hq", "HQ")


def _events(data: Dataset, rng: random.Random, count: int, year: int) -> None:
    countries = [c[0] for c in COUNTRIES]
    weights = [c[3] for c in COUNTRIES]
    for n in range(count):
        roll = rng.random()  # who organises it: mostly provinces, then the national societies and HQ
        if roll < 0.82:
            organizer = ("province", _weighted(rng, PROVINCES))
        elif roll < 0.97:
            organizer = ("society", rng.choice(SOCIETY_CODES))
        else:
            organizer = ("hq", "HQ")
        kind = _weighted(rng, EVENT_TYPES)
        partner_countries = sorted(set(rng.choices(countries, weights=weights, k=rng.choice((1, 1, 1, 2, 3)))))
        start = date(year, 1, 1) + timedelta(days=rng.randint(0, 364))
        end = start + timedelta(days=rng.choice((0, 1, 2, 2, 3, 4)))
        # Participants: a long tail around the 2015 mean; foreign participants and papers in its ratios.
        participants = max(5, round(rng.lognormvariate(0, 0.9) * PARTICIPANTS_PER_EVENT / 1.5))
        foreign = min(participants, round(participants * FOREIGN_SHARE * rng.uniform(0.2, 1.8)))
        papers = round(participants * PAPERS_PER_EVENT / PARTICIPANTS_PER_EVENT * rng.uniform(0.3, 1.7))
        topic = rng.choice(TOPICS)
        template = TITLES[kind]
        title = template.format("/".join(partner_countries), topic) if template.count("{}") == 2 else template
        title = title.format(topic) if "{}" in title else title
        event: dict[str, Any] = {
            "external_ref": f"DEMO-EV-{n + 1:05d}",
            "title": title,
            "type": kind,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "participants": participants,
            "foreign_participants": foreign,
            "papers": papers,
            "countries": partner_countries,
            "fields": [topic],
        }
        if kind == "delegation_out" or (kind != "online" and rng.random() < 0.04):
            event["host_country"] = partner_countries[0]  # held abroad: no host province
        elif kind != "online":
            home = organizer[1] if organizer[0] == "province" else _weighted(rng, PROVINCES)
            event["host_province"] = home
        if kind == "youth_camp":
            event["target_groups"] = ["youth"]
        data.events.setdefault(organizer, []).append(event)


def _talent(data: Dataset, rng: random.Random, count: int, scale: float, year: int) -> None:
    societies = SOCIETY_CODES[: min(SOCIETIES, count)]
    sizes = _split(count, len(societies), rng)
    countries = [c[0] for c in COUNTRIES if c[0] not in ("HK", "MO", "TW")]
    for society, size in zip(societies, sizes, strict=True):
        people = data.talent.setdefault(society, [])
        for n in range(size):
            abroad = rng.random() < 0.08
            groups = sorted({_weighted(rng, GROUPS) for _ in range(rng.choice((1, 1, 2)))})
            female = "woman_scientist" in groups or rng.random() < 0.3
            people.append(
                {
                    "external_id": f"{society}-{n + 1:05d}",
                    "name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
                    "gender": "F" if female else "M",
                    "birth_year": rng.randint(1950, 2000),
                    "groups": groups,
                    "country": rng.choice(countries) if abroad else "CN",
                    "province": None if abroad else (_weighted(rng, PROVINCES) if rng.random() < 0.8 else None),
                    "reserve": rng.random() < 0.06,
                    "posts": [],
                }
            )
    everyone = [person for society in societies for person in data.talent[society]]
    roles = [role for role, n in (POSTS | OTHER_POSTS).items() for _ in range(scaled(n, scale))]
    holders = rng.sample(everyone, min(len(everyone), len(roles)))  # one post each, a few hold two
    for i, role in enumerate(roles):
        person = holders[i] if i < len(holders) else rng.choice(holders)
        name, _, acronym, seat = rng.choice(INTERNATIONAL)
        start = rng.randint(year - 6, year)
        post: dict[str, Any] = {"organization": f"{name} ({acronym})", "organization_country": seat, "role": role}
        post |= {"start_date": f"{start}-{rng.randint(1, 12):02d}-01", "end_date": None}
        if len(person["posts"]) < 50:
            person["posts"].append(post)


# --- loading ---------------------------------------------------------------------------------------

TokenFor = Callable[[str, str, str], str]  # (org_kind, org_code, scopes) → a bearer token


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise (logs, tests)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.live = sys.stderr.isatty()

    def add(self, n: int) -> None:
        self.done += n
        if self.live and self.total:
            width = 30
            filled = width * self.done // self.total
            sys.stderr.write(f"\r  {self.label:<14} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()
            if self.done >= self.total:
                sys.stderr.write("\n")


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_partners(client: httpx.Client, url: str, token: TokenFor, data: Dataset) -> Counter[str]:
    """HQ records the organizations; each agreement's signer records it with its own token (`partners:write`
    suffices for both: the signing body comes from the token). 409 on an organization names the one already
    there."""
    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token('hq', 'HQ', 'partners:write')}"}
    ids: dict[str, str] = {}
    progress = Progress("partners", len(data.organizations) + len(data.agreements))
    for org in data.organizations:
        body = {k: v for k, v in org.items() if k != "key"}
        response = client.post(f"{url}/v1/partners/organizations", json=body, headers=headers)
        if response.status_code not in (201, 409):
            raise LoadError(f"organization {org['name']!r}: {response.status_code} {response.text[:300]}")
        counts["organizations created" if response.status_code == 201 else "organizations existing"] += 1
        ids[org["key"]] = response.json()["id" if response.status_code == 201 else "existing_id"]
        progress.add(1)
    for agreement in data.agreements:
        body = {k: v for k, v in agreement.items() if k not in ("partners", "signer")}
        body["partner_org_ids"] = [ids[key] for key in agreement["partners"]]
        signer = {"Authorization": f"Bearer {token(*agreement['signer'], 'partners:write')}"}
        response = client.post(f"{url}/v1/partners/agreements", json=body, headers=signer)
        # 409: the same external_ref was recorded before with other dates (an earlier day's demo load).
        if response.status_code not in (200, 201, 409):
            raise LoadError(f"agreement {agreement['external_ref']}: {response.status_code} {response.text[:300]}")
        counts["agreements created" if response.status_code == 201 else "agreements existing"] += 1
        progress.add(1)
    return counts


def load_events(client: httpx.Client, url: str, token: TokenFor, data: Dataset) -> Counter[str]:
    """Each organizer posts its own events in batches, with its own token."""
    counts: Counter[str] = Counter()
    progress = Progress("events", data.event_count)
    for (kind, code), events in sorted(data.events.items()):
        headers = {"Authorization": f"Bearer {token(kind, code, 'events:write')}"}
        for batch in _chunks(events, 500):
            response = client.post(f"{url}/v1/events/batch", json={"events": batch}, headers=headers)
            if response.status_code != 200:
                raise LoadError(f"events of {kind} {code}: {response.status_code} {response.text[:300]}")
            for item in response.json()["items"]:
                if item["status"] == "rejected":
                    raise LoadError(f"event {item['external_ref']} of {kind} {code} rejected: {item.get('errors')}")
                counts[f"events {item['status']}"] += 1
            progress.add(len(batch))
    return counts


def load_talent(client: httpx.Client, url: str, token: TokenFor, data: Dataset) -> Counter[str] | None:
    """Each society syncs its whole pool (mode full) with its own token; None when the talent API is absent."""
    counts: Counter[str] = Counter()
    progress = Progress("people", data.people_count)
    for society, people in sorted(data.talent.items()):
        headers = {"Authorization": f"Bearer {token('society', society, 'talent:sync')}"}
        response = client.post(f"{url}/v1/talent/sync", json={"mode": "full", "records": people}, headers=headers)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise LoadError(f"talent of {society}: {response.status_code} {response.text[:300]}")
        answer = response.json()
        if answer.get("rejected"):
            raise LoadError(f"talent of {society}: rejected {answer['rejected'][:3]}")
        for key in ("created", "updated", "unchanged", "removed"):
            counts[f"people {key}"] += int(answer.get(key, 0))
        progress.add(len(people))
    return counts


class LoadError(Exception):
    """A service refused part of the demo dataset (a bug in the generator or the service: say so loudly)."""


def summary(counts: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{key}: {n}" for key, n in counts)


def load(urls: dict[str, str], token: TokenFor, scale: float = 1.0, year: int = DEMO_YEAR) -> list[str]:
    """Load the dataset into the services at `urls` (by service name); the lines to print."""
    data = generate(scale=scale, year=year, today=date.today())
    lines = []
    with httpx.Client(timeout=120) as client:
        partners = load_partners(client, urls["partners"], token, data)
        lines.append(f"demo partners: {summary(sorted(partners.items()))}")
        events = load_events(client, urls["events"], token, data)
        lines.append(f"demo events: {summary(sorted(events.items()))}")
        talent = load_talent(client, urls["talent"], token, data)
        if talent is None:
            lines.append("demo talent: skipped, the talent API answers 404 on /v1/talent/sync (not built yet)")
        else:
            lines.append(f"demo talent: {summary(sorted(talent.items()))}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("EXCHANGE_DEMO_SCALE") or 1.0))
    parser.add_argument(
        "--year", type=int, default=DEMO_YEAR, help=f"the year of the events (default: {DEMO_YEAR}, whatever the date)"
    )
    parser.add_argument("--host", default="http://127.0.0.1", help="where the four services listen")
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("EXCHANGE_PORT_OFFSET") or 0))
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import token  # the same signing as `make run`

    ports = {"partners": 8001, "events": 8002, "talent": 8003, "reporting": 8004}
    urls = {name: f"{args.host}:{port + args.port_offset}" for name, port in ports.items()}
    for line in load(urls, token, scale=args.scale, year=args.year):
        print(line)


if __name__ == "__main__":
    main()
