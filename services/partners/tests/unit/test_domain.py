"""The aggregates' own rules and the identity rules (ROR checksum, normalised names), on plain objects."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from partners.domain.agreement import Agreement
from partners.domain.base import Actor, Body, InvalidValue, NotPermitted, WrongState
from partners.domain.membership import Membership
from partners.domain.names import name_key, ror_id
from partners.domain.organization import Organization

GD = Body("province", "440000")
OWNER = Actor(GD)
STRANGER = Actor(Body("province", "110000"))
ADMIN = Actor(Body("hq", "HQ"), is_admin=True)
TODAY = date(2026, 3, 1)


def agreement(expires_on: date | None = TODAY + timedelta(days=365), **changes: object) -> Agreement:
    values: dict[str, object] = {
        "title": "MoU",
        "kind": "mou",
        "partner_org_ids": ["o1"],
        "signed_on": date(2025, 1, 1),
        "expires_on": expires_on,
    }
    return Agreement.sign(id="a1", signed_by=GD, **(values | changes))


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("03wnrjx87", "03wnrjx87"), ("https://ror.org/03wnrjx87", "03wnrjx87"), (" 03WNRJX87 ", "03wnrjx87")],
)
def test_a_ror_id_is_read_bare_or_as_its_url(given, canonical):
    assert ror_id(given) == canonical


@pytest.mark.parametrize("bad", ["03wnrjx88", "13wnrjx87", "03wnrjx8", "03wnrix87", "ror.org/03wnrjx87", ""])
def test_a_ror_id_with_a_wrong_checksum_or_shape_is_refused(bad):
    with pytest.raises(ValueError):
        ror_id(bad)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The Royal Society, Inc.", "royal society"),
        ("Max-Planck-Gesellschaft e.V.", "max planck gesellschaft"),
        ("Académie des sciences", "ACADEMIE DES SCIENCES"),
        ("华为技术有限公司", "华为技术"),
        ("ＡＢＣ Ｌｔｄ", "abc"),
    ],
)
def test_names_that_differ_only_in_case_punctuation_accents_or_legal_form_meet(a, b):
    assert name_key(a) == name_key(b)


def test_names_that_are_only_noise_keep_their_words():
    assert name_key("The Ltd.") == "the ltd"
    assert name_key("Royal Society") != name_key("Royal Academy")


def test_an_organization_update_reports_only_real_changes_and_moves_the_version_once():
    org = Organization.register(id="o1", by=GD, name="A", country="DE", kind="academy")
    assert org.update(OWNER, {"name": "A"}) == {} and org.version == 1
    assert org.update(OWNER, {"name": "B", "website": None}) == {"name": "B"} and org.version == 2
    with pytest.raises(NotPermitted):
        org.update(STRANGER, {"name": "C"})
    with pytest.raises(InvalidValue):
        org.update(OWNER, {"status": "merged"})
    with pytest.raises(InvalidValue):
        Organization.register(id="o2", by=GD, name="A", country="DE", kind="club")


def test_a_merged_organization_takes_no_change_and_merges_once():
    survivor = Organization.register(id="o1", by=GD, name="A", country="DE", kind="academy")
    duplicate = Organization.register(id="o2", by=GD, name="A2", country="DE", kind="academy")
    with pytest.raises(NotPermitted):
        duplicate.merge_into(OWNER, survivor)
    duplicate.merge_into(ADMIN, survivor)
    assert (duplicate.status, duplicate.merged_into, duplicate.version) == ("merged", "o1", 2)
    with pytest.raises(WrongState):
        duplicate.update(ADMIN, {"name": "X"})
    with pytest.raises(WrongState):
        duplicate.merge_into(ADMIN, survivor)
    with pytest.raises(WrongState):
        survivor.merge_into(ADMIN, duplicate)


def test_content_compares_partners_and_fields_as_sets():
    a = agreement(partner_org_ids=["o2", "o1"], fields=["b", "a"])
    b = agreement(partner_org_ids=["o1", "o2"], fields=["a", "b"])
    assert a.content() == b.content()
    assert a.content() != agreement(partner_org_ids=["o1"]).content()


def test_expiry_happens_the_day_after_expires_on_and_once():
    a = agreement(expires_on=TODAY)
    assert not a.expire(TODAY)
    assert a.expire(TODAY + timedelta(days=1)) and a.status == "expired" and a.version == 2
    assert not a.expire(TODAY + timedelta(days=2)) and a.version == 2
    assert a.next_check_on is None
    assert not agreement(expires_on=None).expire(date(2999, 1, 1))


def test_notices_each_once_per_term_and_a_late_start_skips_the_wider_windows():
    a = agreement(expires_on=TODAY + timedelta(days=200))
    assert a.next_check_on == TODAY + timedelta(days=20)
    assert a.due_notice(TODAY) is None
    assert a.due_notice(TODAY + timedelta(days=20)) == 180
    assert a.due_notice(TODAY + timedelta(days=21)) is None
    assert a.due_notice(TODAY + timedelta(days=175)) == 30  # 90 was missed: 30 is the window now
    assert a.due_notice(TODAY + timedelta(days=176)) is None
    assert a.next_check_on == TODAY + timedelta(days=201)
    assert a.version == 1  # notices change nothing public
    a.renew(OWNER, TODAY + timedelta(days=300), TODAY + timedelta(days=175))
    assert a.term == 2 and a.due_notice(TODAY + timedelta(days=175)) == 180


def test_will_not_renew_leaves_only_the_expiry_to_check():
    a = agreement(expires_on=TODAY + timedelta(days=100))
    a.update(OWNER, {"will_not_renew": True})
    assert a.due_notice(TODAY + timedelta(days=50)) is None
    assert a.next_check_on == TODAY + timedelta(days=101)
    a.renew(OWNER, TODAY + timedelta(days=500), TODAY)
    assert a.will_not_renew is False  # renewing is the decision to go on


def test_renew_and_terminate_rules():
    a = agreement(expires_on=TODAY + timedelta(days=10))
    with pytest.raises(InvalidValue):
        a.renew(OWNER, TODAY + timedelta(days=10), TODAY)
    with pytest.raises(NotPermitted):
        a.renew(STRANGER, TODAY + timedelta(days=30), TODAY)
    with pytest.raises(InvalidValue):
        agreement(expires_on=None).renew(OWNER, TODAY, TODAY)
    with pytest.raises(InvalidValue):
        a.terminate(OWNER, "", TODAY)
    a.terminate(ADMIN, "partner dissolved", TODAY)
    assert (a.status, a.terminated_on, a.next_check_on) == ("terminated", TODAY, None)
    for change in (
        lambda: a.terminate(OWNER, "again", TODAY),
        lambda: a.renew(OWNER, TODAY + timedelta(days=99), TODAY),
        lambda: a.update(OWNER, {"title": "X"}),
    ):
        with pytest.raises(WrongState):
            change()
    assert not a.expire(TODAY + timedelta(days=99))


def test_replace_partner_keeps_the_order_and_no_duplicates():
    a = agreement(partner_org_ids=["o1", "dup", "o2"])
    assert a.replace_partner("dup", "o2") and a.partner_org_ids == ["o1", "o2"]
    assert not a.replace_partner("dup", "o3")


def test_a_membership_ends_once_and_not_before_it_began():
    m = Membership(id="m1", organization_id="o1", member=GD, since=TODAY)
    with pytest.raises(InvalidValue):
        m.end(OWNER, TODAY - timedelta(days=1))
    with pytest.raises(NotPermitted):
        m.end(STRANGER, TODAY)
    m.end(OWNER, TODAY)
    assert (m.status, m.until, m.version) == ("ended", TODAY, 2)
    with pytest.raises(WrongState):
        m.end(ADMIN, TODAY)
    m.move_to("o9")
    assert m.organization_id == "o9" and m.version == 3
