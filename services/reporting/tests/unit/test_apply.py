"""The projections' rules over the in-memory writer: the version gate, updates that subtract exactly,
cancellations, partners re-attributed when an organization's country changes, an event's home region, and a
person's figures (groups, posts, roles) and their removal."""

from __future__ import annotations

from fakes import InMemoryProjectionWriter
from reporting.projections.apply import apply_changes
from reporting.projections.changes import Change, decode_change
from support import agreement_message, event_data, event_message, organization_message, person_message


def change(message: object) -> Change:
    decoded = decode_change(message)  # type: ignore[arg-type]
    assert decoded is not None
    return decoded


async def test_an_event_counts_in_all_its_home_its_countries_and_its_body() -> None:
    store = InMemoryProjectionWriter()
    data = event_data(id="e1", host_province="440000", countries=["DE"], start_date="2025-05-10", participants=30)
    result = await apply_changes(store, 1, [change(event_message(data))])
    figures = store.figures()
    assert result.applied == 1 and result.ignored == 0
    for region in ("all", "cn:440000", "m49:150", "group:eu"):
        assert figures[(region, 2025, "events.count")] == 1 and figures[(region, 0, "events.count")] == 1
        assert figures[(region, 2025, "events.participants")] == 30
    assert figures[("body:province:440000", 2025, "events.count")] == 1
    assert figures[("cn:440000", 2025, "events.by_type.conference")] == 1
    assert store.countries("events", "cn:440000", 2025) == {"DE"}
    assert "body:province:440000" not in result.changed_regions and "cn:440000" in result.changed_regions


async def test_an_older_or_repeated_version_changes_nothing() -> None:
    store = InMemoryProjectionWriter()
    v2 = event_data(id="e1", version=2, host_province="320000")
    await apply_changes(store, 1, [change(event_message(v2))])
    before = store.figures()
    v1 = {**v2, "version": 1, "host_province": "440000"}
    result = await apply_changes(store, 1, [change(event_message(v1)), change(event_message(v2))])
    assert result.applied == 0 and result.ignored == 2
    assert store.figures() == before


async def test_the_newest_version_in_a_batch_wins_and_the_others_are_ignored() -> None:
    store = InMemoryProjectionWriter()
    v1 = event_data(id="e1", version=1, host_province="440000")
    v3 = {**v1, "version": 3, "host_province": "320000"}
    v2 = {**v1, "version": 2, "host_province": "110000"}
    result = await apply_changes(store, 1, [change(event_message(m)) for m in (v1, v3, v2)])
    assert (result.applied, result.ignored) == (1, 2)
    regions = {r for r, _y, m in store.figures() if m == "events.count" and r.startswith("cn:")}
    assert regions == {"cn:320000"}


async def test_an_update_moves_the_figures_and_a_cancellation_removes_them() -> None:
    store = InMemoryProjectionWriter()
    v1 = event_data(id="e1", host_province="440000", countries=["DE", "TH"])
    await apply_changes(store, 1, [change(event_message(v1))])
    v2 = {**v1, "version": 2, "host_province": "320000", "countries": []}
    await apply_changes(store, 1, [change(event_message(v2))])
    figures = store.figures()
    assert figures[("cn:320000", 2025, "events.count")] == 1
    assert not any(r in ("cn:440000", "m49:150", "group:asean") for r, _y, _m in figures)
    assert store.countries("events", "all", 2025) == set()
    v3 = {**v2, "version": 3, "status": "cancelled"}
    await apply_changes(store, 1, [change(event_message(v3))])
    assert store.figures() == {}


async def test_an_organization_moving_country_re_attributes_its_agreements() -> None:
    store = InMemoryProjectionWriter()
    await apply_changes(store, 1, [change(organization_message("o1", "DE"))])
    await apply_changes(store, 1, [change(agreement_message("a1", ["o1"], signed_on="2025-03-01"))])
    assert store.figures()[("m49:150", 2025, "partners.agreements_signed")] == 1
    await apply_changes(store, 1, [change(organization_message("o1", "TH", version=2))])
    figures = store.figures()
    assert ("m49:150", 2025, "partners.agreements_signed") not in figures
    assert figures[("group:asean", 2025, "partners.agreements_signed")] == 1
    assert figures[("all", 2025, "partners.agreements_signed")] == 1
    assert {r for r, *_ in store.agreement_regions[(1, "a1")]} >= {"all", "group:asean"}
    assert store.partner_locks == 3  # every batch holding partners takes turns


async def test_generations_are_apart() -> None:
    store = InMemoryProjectionWriter()
    data = event_data(id="e1")
    await apply_changes(store, 1, [change(event_message(data))])
    result = await apply_changes(store, 2, [change(event_message(data))])
    assert result.applied == 1  # generation 2 has not seen it
    assert store.figures(2) == store.figures(1)


async def test_every_partners_type_of_the_contract_is_projected() -> None:
    """agreement.updated changes an agreement; organization.merged takes the organization out of every
    figure; agreement.expiring is a notice at the unchanged version (the gate ignores it)."""
    store = InMemoryProjectionWriter()
    await apply_changes(store, 1, [change(organization_message("o1", "DE")), change(organization_message("o2", "TH"))])
    signed = agreement_message("a1", ["o1"], signed_on="2025-03-01")
    await apply_changes(store, 1, [change(signed)])
    updated = agreement_message("a1", ["o2"], signed_on="2025-03-01", version=2, type_="exchange.agreement.updated")
    await apply_changes(store, 1, [change(updated)])
    figures = store.figures()
    assert figures[("group:asean", 2025, "partners.agreements_signed")] == 1
    assert ("m49:150", 2025, "partners.agreements_signed") not in figures
    notice = agreement_message("a1", ["o2"], signed_on="2025-03-01", version=2, type_="exchange.agreement.expiring")
    result = await apply_changes(store, 1, [change(notice)])
    assert result.ignored == 1 and store.figures() == figures
    merged = organization_message("o1", "DE", version=2)
    merged.type = "exchange.organization.merged"
    merged.data = {**merged.data, "status": "merged", "merged_into": "o2"}  # type: ignore[dict-item]
    await apply_changes(store, 1, [change(merged)])
    assert store.figures()[("all", 0, "partners.organizations")] == 1  # o2 only
    assert ("m49:150", 0, "partners.organizations") not in store.figures()


async def test_an_events_home_is_its_province_else_the_national_level_and_a_city_counts_in_its_province() -> None:
    store = InMemoryProjectionWriter()
    abroad = event_data(id="a", host_country="DE", host_province=None, organizer=("province", "510000"))
    online = event_data(id="o", type="online", host_country="CN", host_province=None, organizer=("society", "CMES"))
    city = event_data(id="c", host_country="US", host_province=None, organizer=("province", "440300"))
    await apply_changes(store, 1, [change(event_message(m)) for m in (abroad, online, city)])
    figures = store.figures()
    homes = {r: v for (r, y, m), v in figures.items() if m == "events.count" and y == 0 and r.startswith("cn:")}
    assert homes == {"cn:510000": 1, "cn:national": 1, "cn:440000": 1}  # Shenzhen's code → Guangdong
    assert figures[("all", 0, "events.count")] == sum(homes.values())


async def test_a_person_counts_at_home_with_groups_posts_and_roles_and_a_removal_takes_everything_back() -> None:
    store = InMemoryProjectionWriter()
    posts = [
        {"organization": "ISO", "organization_country": "CH", "role": "vice_president",
         "start_date": "2020-01-01", "end_date": "2021-12-31"},
        {"organization": "IUPAC", "organization_country": None, "role": "member",
         "start_date": "2021-06-01", "end_date": None},
    ]  # fmt: skip
    resident = person_message("p1", groups=["woman_scientist", "young_scientist"], reserve=True, posts=posts)
    abroad = person_message("p2", groups=["engineer"], country="DE", province=None, society="CAST")
    await apply_changes(store, 1, [change(resident), change(abroad)])
    figures = store.figures()
    assert figures[("cn:310000", 0, "talent.persons")] == 1
    assert figures[("cn:310000", 0, "talent.reserve")] == 1
    assert figures[("cn:310000", 0, "talent.by_group.woman_scientist")] == 1
    assert figures[("cn:310000", 0, "talent.posts_by_role.vice_president")] == 1
    assert figures[("m49:155", 0, "talent.posts")] == 1  # the ISO post: Switzerland, Western Europe
    assert figures[("m49:155", 0, "talent.persons")] == 1 and figures[("m49:155", 0, "talent.by_group.engineer")] == 1
    assert figures[("all", 0, "talent.persons")] == 2

    await apply_changes(store, 1, [change(person_message("p1", version=2, removed=True))])
    left = {(r, m) for (r, _y, m) in store.figures() if m.startswith("talent.")}
    assert not {(r, m) for r, m in left if r == "cn:310000"}
    assert ("m49:155", "talent.persons") in left  # the other person stays
