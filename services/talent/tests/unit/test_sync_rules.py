"""The sync, read and erase use cases against the in-memory store (the rules; the databases are the
integration tests')."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from common.auth import Principal
from common.errors import Forbidden, Unprocessable
from common.outbox import MessageTooLarge
from talent.application.ports import PersonFilter, PostFilter
from talent.application.use_cases import BadRecord, TalentService
from talent.domain.model import PERSONAL_FIELDS

CMES = Principal("cmes-client", "society", "CMES", frozenset({"talent:sync"}))
CAST = Principal("cast-client", "society", "CAST", frozenset({"talent:sync"}))
READER = Principal("dashboard", "province", "440000", frozenset({"reporting:read"}))
ADMIN = Principal("hq", "hq", "HQ", frozenset({"admin"}))


def person(n: int, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "external_id": f"P{n}",
        "name": f"Person {n}",
        "groups": ["engineer"],
        "country": "CN",
        "province": "110000",
        "email": f"p{n}@example.org",
        "posts": [{"organization": "WFEO", "role": "member", "start_date": "2020-01-01"}] if n % 2 else [],
    }
    base.update(overrides)
    return base


async def test_created_then_unchanged_then_updated_and_nothing_published_twice(store) -> None:
    service = TalentService(store, chunk=3)
    records = [person(n) for n in range(10)]
    first = await service.sync(actor=CMES, society=None, mode="delta", records=records)
    assert (first.created, first.updated, first.unchanged, first.removed) == (10, 0, 0, 0)
    assert len(store.memory.messages) == 10
    again = await service.sync(actor=CMES, society=None, mode="delta", records=records)
    assert (again.created, again.unchanged) == (0, 10) and len(store.memory.messages) == 10
    records[3]["reserve"] = True
    third = await service.sync(actor=CMES, society=None, mode="delta", records=records)
    assert (third.updated, third.unchanged) == (1, 9)
    assert store.memory.messages[-1].data["version"] == 2


async def test_a_change_whose_message_would_pass_the_bound_is_422_and_nothing_is_written(store) -> None:
    service = TalentService(store, max_message_bytes=4096)
    posts = [{"organization": f"{n} " + "国" * 250, "role": "member", "start_date": "2020-01-01"} for n in range(8)]
    records = [person(1), person(2, posts=posts)]
    for dry_run in (True, False):  # a dry run answers what the sync would
        with pytest.raises(MessageTooLarge) as refused:
            await service.sync(actor=CMES, society=None, mode="delta", records=records, dry_run=dry_run)
        assert refused.value.status == 422 and refused.value.field == "posts"
    assert (store.memory.people, store.memory.messages, store.memory.commits) == ({}, [], 0)
    fine = await service.sync(actor=CMES, society=None, mode="delta", records=[person(1), person(2)])
    assert fine.created == 2 and len(store.memory.messages) == 2


async def test_rejections_do_not_reject_the_rest_and_name_their_record(store) -> None:
    service = TalentService(store)
    records = [person(0), person(1, email="bad"), person(2), person(0), BadRecord("not a JSON object"), "text"]
    result = await service.sync(actor=CMES, society=None, mode="delta", records=records)
    assert result.created == 2
    rejected = {r["index"]: r for r in result.rejected}
    assert set(rejected) == {1, 3, 4, 5}
    assert rejected[1]["external_id"] == "P1" and rejected[1]["errors"][0]["loc"] == ["records", "1", "email"]
    assert rejected[3]["errors"][0]["msg"] == "duplicate external_id in this request"


async def test_full_mode_removes_the_missing_ones_but_not_a_rejected_one(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(n) for n in range(5)])
    await service.sync(actor=CAST, society=None, mode="delta", records=[person(n) for n in range(5)])
    result = await service.sync(
        actor=CMES, society=None, mode="full", records=[person(0), person(1, birth_year=1800), person(2)]
    )
    assert (result.removed, result.unchanged, len(result.rejected)) == (2, 2, 1)
    live = [p for p in store.memory.people.values() if not p.deleted]
    assert sorted((p.society, p.external_id) for p in live if p.society == "CMES") == [
        ("CMES", "P0"),
        ("CMES", "P1"),
        ("CMES", "P2"),
    ]
    assert sum(p.society == "CAST" for p in live) == 5  # another society's pool is untouched
    removed = [m for m in store.memory.messages if m.type == "exchange.person.removed"]
    assert len(removed) == 2 and all(m.data["deleted"] and m.data["groups"] == [] for m in removed)


async def test_dry_run_answers_the_same_and_changes_nothing(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(n) for n in range(4)])
    before = (dict(store.memory.people), len(store.memory.messages), store.memory.commits)
    records = [person(0, reserve=True), person(1), person(7), person(8, email="x")]
    dry = await service.sync(actor=CMES, society=None, mode="full", records=records, dry_run=True)
    assert (dict(store.memory.people), len(store.memory.messages), store.memory.commits) == before
    real = await service.sync(actor=CMES, society=None, mode="full", records=records)
    assert {**dry.as_dict(), "dry_run": False} == real.as_dict()


async def test_erasure_leaves_no_personal_data_and_a_later_sync_makes_a_new_person(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(1)])
    (first,) = store.memory.people.values()
    erased = await service.erase(actor=CMES, person_id=uuid.UUID(first.id))
    assert erased.deleted and erased.version == 2
    stored = store.memory.people[first.id]
    assert all(stored.full_state()[f] is None for f in PERSONAL_FIELDS) and stored.external_id is None
    note = store.memory.audit[-1]
    assert note.action == "person.erased" and "Person 1" not in repr(note) and "p1@example.org" not in repr(note)
    assert set(PERSONAL_FIELDS) <= set(note.changes)
    again = await service.sync(actor=CMES, society=None, mode="delta", records=[person(1)])
    assert again.created == 1
    assert len({p.id for p in store.memory.people.values()}) == 2
    assert (await service.erase(actor=CMES, person_id=uuid.UUID(first.id))).version == 2  # twice: no change


async def test_deleted_true_erases(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(1), person(2)])
    result = await service.sync(
        actor=CMES,
        society=None,
        mode="delta",
        records=[{"external_id": "P1", "deleted": True}, {"external_id": "P9", "deleted": True}],
    )
    assert (result.removed, result.unchanged) == (1, 1)


async def test_society_comes_from_the_token(store) -> None:
    service = TalentService(store)
    with pytest.raises(Forbidden):
        await service.sync(actor=CMES, society="CAST", mode="delta", records=[])
    with pytest.raises(Forbidden):
        await service.sync(actor=READER, society=None, mode="delta", records=[])
    with pytest.raises(Unprocessable):
        await service.sync(actor=ADMIN, society=None, mode="delta", records=[])
    assert (await service.sync(actor=ADMIN, society="CAST", mode="delta", records=[person(1)])).created == 1
    (cast_person,) = store.memory.people.values()
    with pytest.raises(Forbidden):
        await service.erase(actor=CMES, person_id=uuid.UUID(cast_person.id))


async def test_personal_fields_only_for_the_same_society_or_admin(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(1)])
    (one,) = store.memory.people.values()
    own = await service.get(reader=CMES, person_id=uuid.UUID(one.id))
    assert own["name"] == "Person 1" and own["email"] == "p1@example.org"
    assert (await service.get(reader=ADMIN, person_id=uuid.UUID(one.id)))["name"] == "Person 1"
    for reader in (CAST, READER):
        public = await service.get(reader=reader, person_id=uuid.UUID(one.id))
        assert not set(PERSONAL_FIELDS) & set(public) and "external_id" not in public
        items, _ = await service.list_persons(reader=reader, where=PersonFilter(), limit=10, cursor=None)
        assert not set(PERSONAL_FIELDS) & set(items[0])


async def test_pages_follow_the_cursor(store) -> None:
    service = TalentService(store)
    await service.sync(actor=CMES, society=None, mode="delta", records=[person(n) for n in range(7)])
    seen: list[str] = []
    cursor = None
    while True:
        items, cursor = await service.list_persons(reader=READER, where=PersonFilter(), limit=3, cursor=cursor)
        seen += [i["id"] for i in items]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    posts, cursor = await service.list_posts(where=PostFilter(role="member"), limit=2, cursor=None)
    assert len(posts) == 2 and cursor is not None
    rest, last = await service.list_posts(where=PostFilter(role="member"), limit=2, cursor=cursor)
    assert len(rest) == 1 and last is None
    with pytest.raises(Unprocessable):
        await service.list_persons(reader=READER, where=PersonFilter(), limit=3, cursor="!!")
