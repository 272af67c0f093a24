"""An in-memory `TalentStore` (fixture `store`): the use cases' rules tested in milliseconds, without a database."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from common.envelope import CloudEvent
from talent.application.ports import AuditNote, Changes, Known, PersonFilter, PostEntry, PostFilter
from talent.domain.model import Person


@dataclass
class Memory:
    people: dict[str, Person] = field(default_factory=dict)
    messages: list[CloudEvent] = field(default_factory=list)  # as a consumer reads them
    audit: list[AuditNote] = field(default_factory=list)
    commits: int = 0


def _known(person: Person) -> Known:
    return Known(person.id, person.society, person.external_id, person.version, person.content_hash, person.deleted)


class FakeWriter:
    def __init__(self, memory: Memory, society: str) -> None:
        self.memory = memory
        self.society = society
        self.staged = copy.deepcopy(memory)

    async def known(self, external_ids: Sequence[str]) -> dict[str, Known]:
        wanted = set(external_ids)
        return {
            p.external_id: _known(p)
            for p in self.staged.people.values()
            if p.society == self.society and p.external_id in wanted
        }

    async def absent(self, present: Collection[str]) -> list[Known]:
        return [
            _known(p)
            for p in sorted(self.staged.people.values(), key=lambda p: p.id)
            if p.society == self.society and not p.deleted and p.external_id not in present
        ]

    async def by_id(self, person_id: uuid.UUID) -> Known | None:
        person = self.staged.people.get(str(person_id))
        return _known(person) if person else None

    async def write(self, changes: Changes) -> None:
        for person in [*changes.created, *changes.updated, *changes.erased]:
            self.staged.people[person.id] = person
        self.staged.messages.extend(CloudEvent.model_validate_json(m.payload) for m in changes.messages)
        self.staged.audit.extend(changes.audit)

    async def commit(self) -> None:
        self.staged.commits += 1
        self.memory.__dict__.update(copy.deepcopy(self.staged).__dict__)

    async def rollback(self) -> None:
        self.staged = copy.deepcopy(self.memory)


class FakeStore:
    def __init__(self) -> None:
        self.memory = Memory()
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def writer(self, society: str) -> AsyncIterator[FakeWriter]:
        async with self._locks.setdefault(society, asyncio.Lock()):
            yield FakeWriter(self.memory, society)

    async def get(self, person_id: uuid.UUID) -> Person | None:
        return self.memory.people.get(str(person_id))

    async def list_persons(self, where: PersonFilter, *, limit: int, after: uuid.UUID | None) -> list[Person]:
        found = []
        for person in sorted(self.memory.people.values(), key=lambda p: uuid.UUID(p.id)):
            c = person.content
            if person.deleted or (after is not None and uuid.UUID(person.id) <= after):
                continue
            if where.society is not None and person.society != where.society:
                continue
            if where.group is not None and where.group not in c["groups"]:
                continue
            if where.country is not None and c["country"] != where.country:
                continue
            if where.reserve is not None and c["reserve"] != where.reserve:
                continue
            if where.has_post is not None and bool(c["posts"]) != where.has_post:
                continue
            if where.organization is not None and all(p["organization"] != where.organization for p in c["posts"]):
                continue
            found.append(person)
        return found[:limit]

    async def list_posts(
        self, where: PostFilter, *, limit: int, after: tuple[uuid.UUID, int] | None
    ) -> list[PostEntry]:
        entries = []
        for person in sorted(self.memory.people.values(), key=lambda p: uuid.UUID(p.id)):
            for position, post in enumerate(person.content.get("posts", [])):
                if after is not None and (uuid.UUID(person.id), position) <= after:
                    continue
                if where.society not in (None, person.society) or where.role not in (None, post["role"]):
                    continue
                if where.organization not in (None, post["organization"]):
                    continue
                entries.append(
                    PostEntry(
                        person.id,
                        position,
                        person.society,
                        post["organization"],
                        post["organization_country"],
                        post["role"],
                        post["start_date"],
                        post["end_date"],
                    )
                )
        return entries[:limit]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()
