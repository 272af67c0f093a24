"""The use cases' rules on the in-memory store (fakes.py): creation, idempotency, versions, the
cancelled rule and the messages, in milliseconds. The same paths on real databases, with their
failures (races, outages, refused rows), are in tests/integration."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from common.audit import field_changes
from common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable
from events.application.ports import NOT_AUDITED, RECORDED_CHANGES, Actor, EventFilter
from events.application.use_cases import EventsService
from events.domain.event import Event
from events.domain.model import EventCreate, EventPatch

from .fakes import InMemoryEventStore

PROVINCE = Actor("province", "440000", False, "province:440000")
OTHER = Actor("province", "110000", False, "province:110000")


def draft(**overrides: Any) -> EventCreate:
    values: dict[str, Any] = {
        "external_ref": "GD-1",
        "title": "Forum",
        "type": "forum",
        "start_date": "2025-05-10",
        "end_date": "2025-05-12",
        "host_province": "440000",
        "participants": 10,
    }
    return EventCreate.model_validate(values | overrides)


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def service(store: InMemoryEventStore) -> EventsService:
    return EventsService(store)


async def test_a_new_event_is_active_at_version_1_and_announced_with_its_state(service, store):
    recorded = await service.record_event(actor=PROVINCE, draft=draft())
    assert recorded.created and recorded.state["status"] == "active" and recorded.state["version"] == 1
    [message] = store.published()
    assert message["type"] == "exchange.event.recorded" and message["subject"] == recorded.state["id"]
    assert message["data"] == recorded.state and message["source"] == "/events"


async def test_posting_again_answers_the_event_and_announces_nothing(service, store):
    first = await service.record_event(actor=PROVINCE, draft=draft())
    again = await service.record_event(actor=PROVINCE, draft=draft())
    assert not again.created and again.state == first.state and len(store.messages) == 1
    with pytest.raises(Conflict):
        await service.record_event(actor=PROVINCE, draft=draft(papers=3))


async def test_a_body_cannot_record_for_another(service):
    with pytest.raises(Forbidden):
        await service.record_event(actor=PROVINCE, draft=draft(organizer={"kind": "province", "code": "110000"}))


async def test_each_change_adds_one_version_and_an_unchanged_patch_none(service, store):
    event_id = uuid.UUID((await service.record_event(actor=PROVINCE, draft=draft())).state["id"])
    changed = await service.update_event(
        actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=frozenset({1})
    )
    assert changed["version"] == 2 and changed["papers"] == 5
    same = await service.update_event(actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=None)
    assert same["version"] == 2
    assert [m["type"] for m in store.published()] == ["exchange.event.recorded", "exchange.event.updated"]
    assert store.published()[-1]["data"] == changed == await service.get_event(event_id)


async def test_a_stale_version_another_body_or_an_invalid_result_changes_nothing(service, store):
    event_id = uuid.UUID((await service.record_event(actor=PROVINCE, draft=draft())).state["id"])
    with pytest.raises(PreconditionFailed):
        await service.update_event(
            actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=frozenset({7})
        )
    with pytest.raises(Forbidden):
        await service.cancel_event(actor=OTHER, event_id=event_id, if_match=None)
    with pytest.raises(Unprocessable):
        await service.update_event(
            actor=PROVINCE, event_id=event_id, patch=EventPatch(foreign_participants=99), if_match=None
        )
    with pytest.raises(NotFound):
        await service.cancel_event(actor=PROVINCE, event_id=uuid.uuid4(), if_match=None)
    assert (await service.get_event(event_id))["version"] == 1 and len(store.messages) == 1


async def test_a_cancelled_event_cannot_change_and_cancelling_twice_changes_nothing(service, store):
    event_id = uuid.UUID((await service.record_event(actor=PROVINCE, draft=draft())).state["id"])
    cancelled = await service.cancel_event(actor=PROVINCE, event_id=event_id, if_match=None)
    assert cancelled["status"] == "cancelled" and cancelled["version"] == 2
    assert await service.cancel_event(actor=PROVINCE, event_id=event_id, if_match=None) == cancelled
    # refused before the change is validated: an invalid change to a cancelled event is a conflict too
    for patch in (EventPatch(papers=5), EventPatch(foreign_participants=99)):
        with pytest.raises(Conflict):
            await service.update_event(actor=PROVINCE, event_id=event_id, patch=patch, if_match=None)
    assert [m["type"] for m in store.published()][-1] == "exchange.event.cancelled" and len(store.messages) == 2
    listed, _cursor = await service.list_events(EventFilter(status="cancelled"), limit=10, cursor=None)
    assert [e["id"] for e in listed] == [str(event_id)]


async def test_a_batch_answers_each_item_and_announces_each_new_event_once(service, store):
    first, second = draft(external_ref="a"), draft(external_ref="b")
    items = [first, second, first, draft(external_ref="b", papers=9)]
    results = await service.record_drafts(actor=PROVINCE, drafts=[d.json_ready() for d in items])
    assert [r.status for r in results] == ["created", "created", "unchanged", "conflict"]
    assert len(store.messages) == 2 and all(m["data"]["version"] == 1 for m in store.published())
    again = await service.record_drafts(actor=PROVINCE, drafts=[d.json_ready() for d in items])
    assert [r.status for r in again] == ["unchanged", "unchanged", "unchanged", "conflict"]
    assert len(store.messages) == 2


async def test_a_message_over_the_bound_is_refused_before_anything_is_written(store):
    service = EventsService(store, max_message_bytes=1000)
    results = await service.record_drafts(
        actor=PROVINCE, drafts=[draft(external_ref="big", title="x" * 500).json_ready(), draft().json_ready()]
    )
    assert [r.status for r in results] == ["rejected", "created"] and results[0].errors[0]["loc"][2] == "title"
    assert len(store.events) == 1


HQ = Actor("hq", "HQ", True, "hq:HQ")


async def test_every_write_has_its_audit_entry_with_the_acting_body_and_the_changed_fields(service, store):
    recorded = (await service.record_event(actor=PROVINCE, draft=draft())).state
    event_id = uuid.UUID(recorded["id"])
    await service.record_event(actor=PROVINCE, draft=draft())  # posted again: nothing written
    await service.update_event(actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=None)
    await service.update_event(actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=None)
    await service.cancel_event(actor=HQ, event_id=event_id, if_match=None)
    await service.cancel_event(actor=HQ, event_id=event_id, if_match=None)
    batch = await service.record_drafts(
        actor=HQ, drafts=[draft(external_ref="b", organizer={"kind": "province", "code": "440000"}).json_ready()]
    )
    assert [(i, a.actor, a.action) for i, a in store.audit] == [
        (recorded["id"], PROVINCE, "record"),
        (recorded["id"], PROVINCE, "update"),
        (recorded["id"], HQ, "cancel"),
        (batch[0].id, HQ, "record"),
    ]
    changes = [a.changes for _i, a in store.audit]
    assert changes[0] == changes[3] == RECORDED_CHANGES
    assert changes[1] == {"papers": {"old": 0, "new": 5}}
    assert changes[2] == {"status": {"old": "active", "new": "cancelled"}}


async def test_a_refused_write_has_no_audit_entry(service, store):
    event_id = uuid.UUID((await service.record_event(actor=PROVINCE, draft=draft())).state["id"])
    with pytest.raises(PreconditionFailed):
        await service.update_event(actor=PROVINCE, event_id=event_id, patch=EventPatch(papers=5), if_match=frozenset())
    with pytest.raises(Unprocessable):
        await service.update_event(
            actor=PROVINCE, event_id=event_id, patch=EventPatch(foreign_participants=99), if_match=None
        )
    with pytest.raises(Forbidden):
        await service.cancel_event(actor=OTHER, event_id=event_id, if_match=None)
    assert [a.action for _i, a in store.audit] == ["record"]


def test_a_new_events_entry_lists_no_fields_and_a_change_lists_old_and_new():
    state = Event.record(
        event_id=str(uuid.uuid4()), key=("province", "440000", "GD-1"), content=draft().canonical_content(), stamp="t"
    ).state
    # version 1's values come back from the current state and the later entries' `old` values
    assert RECORDED_CHANGES == {}
    changed = {**state, "title": "New title", "version": 2}
    audited = {k: v for k, v in state.items() if k not in NOT_AUDITED}
    assert field_changes(audited, {k: v for k, v in changed.items() if k not in NOT_AUDITED}) == {
        "title": {"old": state["title"], "new": "New title"}
    }
