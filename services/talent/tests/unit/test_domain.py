"""The Person aggregate and the record's validation rules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from common.outbox import MAX_MESSAGE_BYTES, message_headers, outbox_message
from pydantic import ValidationError
from talent.contracts import VOCABULARY, PersonPublic
from talent.domain.model import GROUPS, PERSONAL_FIELDS, ROLES, Person, PersonRecord, orcid_checksum_ok


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "external_id": "CMES-1",
        "name": "王芳",
        "name_en": "Wang Fang",
        "gender": "F",
        "birth_year": 1978,
        "groups": ["engineer"],
        "country": "CN",
        "province": "110000",
        "affiliation": "Tsinghua University",
        "email": "wang.fang@example.org",
        "orcid": "0000-0002-1825-0097",
        "posts": [
            {"organization": "WFEO", "organization_country": "FR", "role": "president", "start_date": "2023-01-01"}
        ],
    }
    base.update(overrides)
    return base


def errors_of(**overrides: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        PersonRecord.model_validate(record(**overrides))
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"groups": ["astronaut"]}, "groups.0"),
        ({"posts": [{"organization": "X", "role": "king", "start_date": "2020-01-01"}]}, "posts.0.role"),
        ({"country": "XX", "province": None}, "country"),
        ({"country": "DE"}, "province is only for people living in China"),
        ({"province": "123456"}, "not a GB/T 2260"),
        ({"birth_year": 1850}, "birth_year"),
        ({"birth_year": 2090}, "birth_year"),
        (
            {"posts": [{"organization": "X", "role": "member", "start_date": "2020-01-01", "end_date": "2019-01-01"}]},
            "end_date is before start_date",
        ),
        ({"email": "not-an-address"}, "not a valid e-mail address"),
        ({"email": "a@b"}, "not a valid e-mail address"),
        ({"orcid": "0000-0002-1825-0096"}, "check digit"),
        ({"orcid": "0000-0002-1825"}, "orcid"),
        ({"name": None}, "name is required"),
        ({"posts": [{"organization": "X", "role": "member", "start_date": "2020-01-01"}] * 51}, "posts"),
        ({"unknown": 1}, "unknown"),
        ({"external_id": "x" * 65}, "external_id"),
        ({"name": "a\x00b"}, "name"),
    ],
)
def test_each_rule_rejects_with_a_clear_error(overrides: dict[str, Any], expected: str) -> None:
    errors = errors_of(**overrides)
    assert any(expected in e for e in errors), errors


def test_errors_never_repeat_the_value() -> None:
    for overrides in (
        {"email": "secret-address"},
        {"orcid": "0000-0002-1825-0096"},
        {"country": "QQ", "province": None},
    ):
        assert all(str(next(iter(overrides.values()))) not in e for e in errors_of(**overrides))


def test_orcid_checksum() -> None:
    assert orcid_checksum_ok("0000-0002-1825-0097")
    assert orcid_checksum_ok("0000-0001-5109-3700")
    assert orcid_checksum_ok("0000-0002-1694-233X")
    assert not orcid_checksum_ok("0000-0002-1694-2330")


def test_a_deleted_record_needs_only_its_external_id() -> None:
    assert PersonRecord.model_validate({"external_id": "x", "deleted": True}).deleted


def test_version_moves_only_on_change_and_erasure_clears_everything_personal() -> None:
    person = Person.new(str(uuid.uuid4()), "CMES", PersonRecord.model_validate(record()))
    assert person.version == 1
    assert person.replaced_by(PersonRecord.model_validate(record())) is person
    changed = person.replaced_by(PersonRecord.model_validate(record(reserve=True)))
    assert changed.version == 2 and changed.content_hash != person.content_hash
    erased = changed.erased()
    assert erased.version == 3 and erased.deleted and erased.external_id is None
    assert all(erased.full_state()[name] is None for name in PERSONAL_FIELDS)
    assert erased.public_state()["groups"] == [] and erased.public_state()["posts"] == []
    assert erased.erased() is erased
    with pytest.raises(ValueError):
        erased.replaced_by(PersonRecord.model_validate(record()))


def test_public_state_is_the_published_contract_and_holds_nothing_personal() -> None:
    person = Person.new(str(uuid.uuid4()), "CMES", PersonRecord.model_validate(record()))
    state = person.public_state()
    assert PersonPublic.model_validate(state).model_dump(mode="json") == state
    assert set(state) == set(PersonPublic.model_fields)
    assert not set(PERSONAL_FIELDS) & set(PersonPublic.model_json_schema()["properties"])
    assert not set(PERSONAL_FIELDS) & set(json.dumps(PersonPublic.model_json_schema()).split('"'))


def test_vocabulary_matches_the_domain() -> None:
    assert tuple(VOCABULARY["groups"]) == GROUPS
    assert tuple(VOCABULARY["roles"]) == ROLES
    assert all(set(label) == {"zh", "en"} for kind in VOCABULARY.values() for label in kind.values())


def test_the_largest_record_publishes_a_message_under_the_broker_bound() -> None:
    post = {
        "organization": "国" * 300,
        "organization_country": "FR",
        "role": "committee_chair",
        "start_date": "2020-01-01",
        "end_date": "2024-12-31",
    }
    largest = record(external_id="x" * 64, groups=list(GROUPS), posts=[post] * 50, fields=["f" * 100] * 250)
    person = Person.new(str(uuid.uuid4()), "C" * 32, PersonRecord.model_validate(largest))
    kind = "exchange.person.upserted"
    message = outbox_message(source="/talent", type=kind, subject=person.id, data=person.public_state())
    size = len(message.key.encode()) + len(message.payload.encode()) + len(message_headers(kind).encode())
    assert size < MAX_MESSAGE_BYTES / 4
