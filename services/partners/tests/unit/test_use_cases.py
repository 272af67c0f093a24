"""The partners use cases on the in-memory store: what each publishes, audits and refuses, with no
database or broker (the same rules run against PostgreSQL in tests/integration)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable
from partners.application.ports import AgreementQuery, MembershipQuery, OrganizationQuery
from partners.contracts import v1
from partners.domain.base import Body

from .fake_store import sequential_id
from .support import ADMIN, BJ, GD, TODAY, agreement_body, org_body, register


# -- organizations ----------------------------------------------------------------------------------
async def test_registering_publishes_version_1_and_audits_the_fields(service, store):
    state = await service.register_organization(GD, org_body())
    assert state["version"] == 1 and state["status"] == "active"
    assert state["created_by"] == {"kind": "province", "code": "440000"}
    assert store.types() == [v1.ORGANIZATION_REGISTERED]
    assert store.published[0].data == state
    v1.OrganizationState.model_validate(state)
    (entry,) = store.state.audit
    assert entry.action == "register" and entry.changes["name"] == {"old": None, "new": "The Royal Society"}


@pytest.mark.parametrize(
    "duplicate",
    [
        {"name": "Someone else", "name_zh": None},  # the same ROR id
        {"name": "royal society, the", "name_zh": None, "ror_id": None},  # the same normalised name
        {"name": "Other", "name_zh": "英国皇家学会有限公司", "ror_id": None},  # the same Chinese name, suffix left out
    ],
)
async def test_a_duplicate_is_refused_naming_the_existing_one(service, store, duplicate):
    existing = await service.register_organization(GD, org_body())
    with pytest.raises(Conflict) as caught:
        await service.register_organization(BJ, org_body(**duplicate))
    assert caught.value.extra["existing_id"] == existing["id"]
    assert store.types() == [v1.ORGANIZATION_REGISTERED]


async def test_the_same_name_in_another_country_is_another_organization(service):
    await service.register_organization(GD, org_body(ror_id=None))
    other = await service.register_organization(GD, org_body(ror_id=None, country="AU"))
    assert other["country"] == "AU"


async def test_an_international_organization_needs_no_country_but_others_do(service):
    state = await register(service, kind="international_org", country=None)
    assert state["country"] is None
    with pytest.raises(Unprocessable) as caught:
        await register(service, 1, country=None)
    assert caught.value.extra["errors"][0]["loc"] == ["body", "country"]


async def test_update_by_its_creator_moves_the_version_and_a_no_op_publishes_nothing(service, store):
    org = await register(service)
    updated = await service.update_organization(GD, org["id"], {"website": "https://a.example"}, frozenset({1}))
    assert updated["version"] == 2 and store.types()[-1] == v1.ORGANIZATION_UPDATED
    assert store.state.audit[-1].changes == {"website": {"old": "https://royalsociety.org", "new": "https://a.example"}}
    again = await service.update_organization(GD, org["id"], {"website": "https://a.example"}, None)
    assert again["version"] == 2 and len(store.published) == 2


async def test_update_checks_author_version_and_duplicates(service):
    first = await register(service, 1)
    second = await register(service, 2)
    with pytest.raises(Forbidden):
        await service.update_organization(BJ, first["id"], {"website": "https://x.example"}, None)
    with pytest.raises(PreconditionFailed):
        await service.update_organization(GD, first["id"], {"website": "https://x.example"}, frozenset({7}))
    with pytest.raises(Conflict) as caught:
        await service.update_organization(GD, second["id"], {"name": "ACADEMY 1"}, None)
    assert caught.value.extra["existing_id"] == first["id"]
    admin_edit = await service.update_organization(ADMIN, first["id"], {"website": "https://x.example"}, None)
    assert admin_edit["version"] == 2


async def test_unknown_organization_is_404(service):
    with pytest.raises(NotFound):
        await service.get_organization(sequential_id())


async def test_list_filters_and_pages(service):
    ids = [(await register(service, n, country="DE" if n % 2 else "FR"))["id"] for n in range(5)]
    page = await service.list_organizations(OrganizationQuery(country="DE"), limit=1, cursor=None)
    assert [o["id"] for o in page.items] == [ids[1]] and page.next_cursor is not None
    rest = await service.list_organizations(OrganizationQuery(country="DE"), limit=5, cursor=page.next_cursor)
    assert [o["id"] for o in rest.items] == [ids[3]] and rest.next_cursor is None
    found = await service.list_organizations(OrganizationQuery(search="科学院4"), limit=10, cursor=None)
    assert [o["id"] for o in found.items] == [ids[4]]
    with pytest.raises(Unprocessable):
        await service.list_organizations(OrganizationQuery(), limit=10, cursor="not a cursor")


# -- agreements -------------------------------------------------------------------------------------
async def test_signing_publishes_and_the_same_external_ref_again_is_idempotent(service, store):
    org = await register(service)
    state, created = await service.sign_agreement(GD, agreement_body([org["id"]]))
    assert created and state["status"] == "active" and state["signed_by"] == {"kind": "province", "code": "440000"}
    v1.AgreementState.model_validate(state)
    published = len(store.published)
    again, created = await service.sign_agreement(GD, agreement_body([org["id"]]))
    assert not created and again == state and len(store.published) == published
    with pytest.raises(Conflict) as caught:
        await service.sign_agreement(GD, agreement_body([org["id"]], title="Another title"))
    assert caught.value.extra["existing_id"] == state["id"]
    other_body, created = await service.sign_agreement(BJ, agreement_body([org["id"]], title="Another title"))
    assert created and other_body["id"] != state["id"]  # external_ref is per signer


async def test_signing_for_another_body_is_for_admins(service):
    org = await register(service)
    with pytest.raises(Forbidden):
        await service.sign_agreement(GD, agreement_body([org["id"]]), signed_by=Body("province", "110000"))
    state, _ = await service.sign_agreement(ADMIN, agreement_body([org["id"]]), signed_by=Body("province", "110000"))
    assert state["signed_by"] == {"kind": "province", "code": "110000"}


async def test_partners_must_exist_and_be_active(service, store):
    org = await register(service, 1)
    survivor = await register(service, 2)
    await service.merge_organizations(ADMIN, survivor["id"], org["id"])
    before = list(store.published)
    with pytest.raises(Unprocessable) as caught:
        await service.sign_agreement(GD, agreement_body([sequential_id(), org["id"]]))
    assert [e["loc"] for e in caught.value.extra["errors"]] == [
        ["body", "partner_org_ids", "0"],
        ["body", "partner_org_ids", "1"],
    ]
    assert "merged" in caught.value.extra["errors"][1]["msg"]
    assert store.published == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "treaty"}, "kind"),
        ({"partner_org_ids": []}, "partner_org_ids"),
        ({"expires_on": date(2025, 5, 10)}, "expires_on"),
    ],
)
async def test_the_agreement_rules_name_their_field(service, change, field):
    org = await register(service)
    body = agreement_body([org["id"]]) | change
    with pytest.raises(Unprocessable) as caught:
        await service.sign_agreement(GD, body)
    assert caught.value.extra["errors"][0]["loc"] == ["body", field]


async def test_renew_must_move_forward_and_brings_an_expired_agreement_back(service, store, clock):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY + timedelta(days=400)))
    with pytest.raises(Unprocessable):
        await service.renew_agreement(GD, state["id"], TODAY + timedelta(days=400), None)
    clock.day = TODAY + timedelta(days=401)
    assert (await service.run_scheduler()).expired == 1
    assert (await service.get_agreement(state["id"]))["status"] == "expired"
    renewed = await service.renew_agreement(GD, state["id"], TODAY + timedelta(days=2000), None)
    assert renewed["status"] == "active"
    assert renewed["renewals"] == [
        {
            "renewed_on": clock.day.isoformat(),
            "previous_expires_on": (TODAY + timedelta(days=400)).isoformat(),
            "expires_on": (TODAY + timedelta(days=2000)).isoformat(),
        }
    ]
    assert v1.AGREEMENT_RENEWED in store.types()


async def test_renew_cannot_end_before_today(service, clock):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY + timedelta(days=10)))
    clock.day = TODAY + timedelta(days=40)
    with pytest.raises(Unprocessable):
        await service.renew_agreement(GD, state["id"], TODAY + timedelta(days=20), None)


async def test_terminate_needs_a_reason_and_a_terminated_agreement_takes_no_change(service, store):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]]))
    with pytest.raises(Unprocessable) as caught:
        await service.terminate_agreement(GD, state["id"], "  ", None)
    assert caught.value.extra["errors"][0]["loc"] == ["body", "reason"]
    with pytest.raises(Forbidden):
        await service.terminate_agreement(BJ, state["id"], "no longer useful", None)
    ended = await service.terminate_agreement(GD, state["id"], "no longer useful", frozenset({state["version"]}))
    assert ended["status"] == "terminated" and ended["terminated_on"] == TODAY.isoformat()
    assert store.types()[-1] == v1.AGREEMENT_TERMINATED
    published = len(store.published)
    with pytest.raises(Conflict):
        await service.terminate_agreement(GD, state["id"], "again", None)
    with pytest.raises(Conflict):
        await service.renew_agreement(GD, state["id"], date(2040, 1, 1), None)
    with pytest.raises(Conflict):
        await service.update_agreement(GD, state["id"], {"title": "New"}, None)
    assert len(store.published) == published


async def test_will_not_renew_stops_the_notices_and_shows_in_the_expiring_list(service, store, clock):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY + timedelta(days=200)))
    updated = await service.update_agreement(GD, state["id"], {"will_not_renew": True}, None)
    assert updated["will_not_renew"] is True and store.types()[-1] == v1.AGREEMENT_UPDATED
    clock.day = TODAY + timedelta(days=150)
    assert (await service.run_scheduler()).notices == 0
    expiring = await service.list_agreements(AgreementQuery(), expiring_within_days=90, limit=10, cursor=None)
    assert [a["id"] for a in expiring.items] == [state["id"]]
    assert v1.AGREEMENT_EXPIRING not in store.types()


async def test_notices_go_out_at_180_90_and_30_days_once_per_term_and_expiry_once(service, store, clock):
    org = await register(service)
    expires = TODAY + timedelta(days=365)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=expires))
    seen: list[tuple[date, int]] = []
    # The day before, of and after each window's start and the expiry (every other day would do nothing).
    edges = {expires - timedelta(days=d) for d in (180, 90, 30, -1)}
    for day in sorted({edge + timedelta(days=k) for edge in edges for k in (-1, 0, 1)}):
        clock.day = day
        before = len(store.published)
        await service.run_scheduler()
        await service.run_scheduler()  # a second pass the same day adds nothing
        for message in store.published[before:]:
            if message.type == v1.AGREEMENT_EXPIRING:
                seen.append((clock.day, message.data["notice_days"]))
                assert message.data["version"] == state["version"]  # a notice does not move the version
                v1.AgreementNotice.model_validate(message.data)
    assert seen == [(expires - timedelta(days=d), d) for d in (180, 90, 30)]
    assert store.types().count(v1.AGREEMENT_EXPIRED) == 1
    expired = next(p for p in store.published if p.type == v1.AGREEMENT_EXPIRED)
    assert expired.data["status"] == "expired" and expired.data["version"] == state["version"] + 1
    # Each notice is recorded too (the scheduler acts as `partners-scheduler`).
    actions = [e.action for e in store.state.audit if e.entity == "agreement"]
    assert actions == ["sign", "notice", "notice", "notice", "expire"]


async def test_an_agreement_signed_inside_a_window_gets_that_notice_at_once_and_not_the_wider(service, store):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY + timedelta(days=60)))
    notices = [p.data["notice_days"] for p in store.published if p.type == v1.AGREEMENT_EXPIRING]
    assert notices == [90]
    assert (await service.run_scheduler()).notices == 0
    renewed = await service.renew_agreement(GD, state["id"], TODAY + timedelta(days=100), None)
    notices = [p.data["notice_days"] for p in store.published if p.type == v1.AGREEMENT_EXPIRING]
    assert notices == [90, 180]  # the new term has its own notices
    assert renewed["status"] == "active"


async def test_an_agreement_recorded_after_its_expiry_is_expired_at_once(service, store):
    org = await register(service)
    await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY - timedelta(days=1)))
    assert store.types()[-2:] == [v1.AGREEMENT_SIGNED, v1.AGREEMENT_EXPIRED]
    assert (await service.run_scheduler()).expired == 0


async def test_a_scheduler_that_cannot_claim_does_nothing(service, store, clock):
    org = await register(service)
    await service.sign_agreement(GD, agreement_body([org["id"]], expires_on=TODAY + timedelta(days=300)))
    store.scheduler_free = False
    clock.day = TODAY + timedelta(days=400)
    assert (await service.run_scheduler()).ran is False
    assert v1.AGREEMENT_EXPIRED not in store.types()


async def test_history_lists_who_changed_which_fields(service):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]]))
    await service.update_agreement(GD, state["id"], {"title": "Renamed"}, None)
    history = await service.agreement_history(state["id"], after=0, limit=10)
    assert [e.action for e in history] == ["sign", "update"]
    assert history[1].changes == {"title": {"old": "MoU on young scientists", "new": "Renamed"}}
    assert history[1].actor["code"] == "440000"
    with pytest.raises(NotFound):
        await service.agreement_history(sequential_id(), after=0, limit=10)


async def test_a_document_must_be_a_pdf_and_is_kept_by_its_digest(service):
    org = await register(service)
    state, _ = await service.sign_agreement(GD, agreement_body([org["id"]]))
    with pytest.raises(Unprocessable):
        await service.upload_document(GD, state["id"], b"GIF89a")
    with pytest.raises(Forbidden):
        await service.upload_document(BJ, state["id"], b"%PDF-1.7 scan")
    with pytest.raises(NotFound):
        await service.download_document(state["id"])
    updated = await service.upload_document(GD, state["id"], b"%PDF-1.7 scan")
    data, digest = await service.download_document(state["id"])
    assert data == b"%PDF-1.7 scan" and updated["document"]["sha256"] == digest


# -- merge and memberships --------------------------------------------------------------------------
async def test_merge_moves_agreements_and_memberships_to_the_survivor(service, store):
    survivor = await register(service, 1)
    duplicate = await register(service, 2)
    other = await register(service, 3)
    both, _ = await service.sign_agreement(GD, agreement_body([duplicate["id"], survivor["id"]], external_ref="A-1"))
    only_dup, _ = await service.sign_agreement(GD, agreement_body([duplicate["id"], other["id"]], external_ref="A-2"))
    untouched, _ = await service.sign_agreement(GD, agreement_body([other["id"]], external_ref="A-3"))
    membership = await service.record_membership(GD, duplicate["id"], date(2020, 1, 1))
    with pytest.raises(Forbidden):
        await service.merge_organizations(GD, survivor["id"], duplicate["id"])
    before = len(store.published)

    result = await service.merge_organizations(ADMIN, survivor["id"], duplicate["id"])

    assert result["agreements_moved"] == 2 and result["memberships_moved"] == 1
    assert result["merged"]["status"] == "merged" and result["merged"]["merged_into"] == survivor["id"]
    published = store.published[before:]
    assert [p.type for p in published] == [
        v1.ORGANIZATION_MERGED,
        v1.AGREEMENT_UPDATED,
        v1.AGREEMENT_UPDATED,
        v1.MEMBERSHIP_RECORDED,
    ]
    v1.MergedOrganizationState.model_validate(published[0].data)
    assert (await service.get_agreement(both["id"]))["partner_org_ids"] == [survivor["id"]]
    assert (await service.get_agreement(only_dup["id"]))["partner_org_ids"] == [survivor["id"], other["id"]]
    assert (await service.get_agreement(untouched["id"]))["version"] == untouched["version"]
    assert (await service.get_membership(membership["id"]))["organization_id"] == survivor["id"]
    # The merged one counts nowhere: not listed, no new agreements, not merged again.
    listed = await service.list_organizations(OrganizationQuery(), limit=10, cursor=None)
    assert duplicate["id"] not in {o["id"] for o in listed.items}
    with pytest.raises(Conflict):
        await service.merge_organizations(ADMIN, other["id"], duplicate["id"])
    with pytest.raises(Unprocessable):
        await service.merge_organizations(ADMIN, other["id"], other["id"])


async def test_a_merged_name_is_free_again(service):
    survivor = await register(service, 1)
    duplicate = await register(service, 2)
    await service.merge_organizations(ADMIN, survivor["id"], duplicate["id"])
    again = await register(service, 2)
    assert again["id"] != duplicate["id"]


async def test_memberships_one_active_per_member_and_ended_once(service, store):
    org = await register(service)
    state = await service.record_membership(GD, org["id"], date(2020, 1, 1))
    assert state["member"] == {"kind": "province", "code": "440000"} and state["status"] == "active"
    with pytest.raises(Conflict) as caught:
        await service.record_membership(GD, org["id"], date(2021, 1, 1))
    assert caught.value.extra["existing_id"] == state["id"]
    with pytest.raises(Forbidden):
        await service.record_membership(GD, org["id"], date(2020, 1, 1), member=Body("province", "110000"))
    with pytest.raises(Unprocessable):
        await service.record_membership(GD, sequential_id(), date(2020, 1, 1))
    with pytest.raises(Forbidden):
        await service.end_membership(BJ, state["id"], None, None)
    with pytest.raises(Unprocessable):
        await service.end_membership(GD, state["id"], date(2019, 1, 1), None)
    ended = await service.end_membership(GD, state["id"], None, frozenset({1}))
    assert ended["status"] == "ended" and ended["until"] == TODAY.isoformat()
    assert store.types()[-1] == v1.MEMBERSHIP_ENDED
    with pytest.raises(Conflict):
        await service.end_membership(GD, state["id"], None, None)
    listed = await service.list_memberships(MembershipQuery(status="ended"), limit=10, cursor=None)
    assert [m["id"] for m in listed.items] == [state["id"]]
    again = await service.record_membership(GD, org["id"], date(2027, 1, 1))
    assert again["id"] != state["id"]
