"""The storage port of the talent use cases: what they need from a database, and nothing of how.
Implemented by `talent.adapters` (PostgreSQL, SQLite) and by an in-memory fake in the unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from common.auth import Principal
from common.outbox import OutboxMessage

from talent.domain.model import Person


@dataclass(frozen=True)
class Known:
    """A stored person as a sync needs to see them: enough to decide and to version a change."""

    id: str
    society: str
    external_id: str | None
    version: int
    content_hash: str | None
    deleted: bool = False

    def person(self) -> Person:
        return Person(self.id, self.society, self.external_id, self.version, {}, self.content_hash, self.deleted)


@dataclass(frozen=True)
class AuditNote:
    action: str
    entity: str
    entity_id: str
    changes: dict[str, dict[str, Any]]


@dataclass
class Changes:
    """One commit's writes: people created, changed and erased, their messages and audit notes."""

    actor: Principal
    created: list[Person] = field(default_factory=list)
    updated: list[Person] = field(default_factory=list)
    erased: list[Person] = field(default_factory=list)
    messages: list[OutboxMessage] = field(default_factory=list)  # built by `common.outbox.outbox_message`
    audit: list[AuditNote] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.erased or self.messages or self.audit)


class SocietyWriter(Protocol):
    """Writes for one society, serialised: while a writer is open no other writer of that society runs
    (a sync and an erasure of the same society wait for one another)."""

    async def known(self, external_ids: Sequence[str]) -> dict[str, Known]:
        """The society's live people with these external ids."""

    async def absent(self, present: Collection[str]) -> list[Known]:
        """The society's live people whose external id is not in `present` (a full sync removes them)."""

    async def by_id(self, person_id: uuid.UUID) -> Known | None: ...

    async def write(self, changes: Changes) -> None:
        """Stage `changes` in the open transaction."""

    async def commit(self) -> None:
        """Commit what was written (the people and their messages together), then begin anew."""

    async def rollback(self) -> None: ...


@dataclass(frozen=True)
class PersonFilter:
    society: str | None = None
    group: str | None = None
    country: str | None = None
    reserve: bool | None = None
    has_post: bool | None = None
    organization: str | None = None


@dataclass(frozen=True)
class PostFilter:
    society: str | None = None
    role: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class PostEntry:
    person_id: str
    position: int
    society: str
    organization: str
    organization_country: str | None
    role: str
    start_date: date
    end_date: date | None


class TalentStore(Protocol):
    def writer(self, society: str) -> AbstractAsyncContextManager[SocietyWriter]:
        """Open a writer for `society`, waiting while another one is open."""

    async def get(self, person_id: uuid.UUID) -> Person | None: ...

    async def list_persons(self, where: PersonFilter, *, limit: int, after: uuid.UUID | None) -> list[Person]:
        """Live people in id order, after `after`, at most `limit`."""

    async def list_posts(
        self, where: PostFilter, *, limit: int, after: tuple[uuid.UUID, int] | None
    ) -> list[PostEntry]:
        """Posts of live people in (person id, position) order."""
