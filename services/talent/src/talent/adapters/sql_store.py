"""The talent store on SQLAlchemy Core: every read on both databases, and the writes on SQLite (one
writer at a time: a society's writers are serialised by a lock in this process). PostgreSQL's writes
take the bulk road of `pg_store`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from common.audit import audit_values
from common.db import json_list_holds
from common.outbox import stage
from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, insert, literal, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from talent.adapters.tables import audit_log, outbox, person_posts, persons
from talent.application.ports import Changes, Known, PersonFilter, PostEntry, PostFilter
from talent.domain.model import PERSONAL_FIELDS, Person

_PUBLIC = ("groups", "country", "province", "reserve", "fields", "posts")
_KNOWN = (
    persons.c.id,
    persons.c.society,
    persons.c.external_id,
    persons.c.version,
    persons.c.content_hash,
    persons.c.deleted,
)


def person_of(row: Mapping[str, Any] | RowMapping) -> Person:
    content = {name: row[name] for name in (*PERSONAL_FIELDS, *_PUBLIC)} if not row["deleted"] else {}
    return Person(
        str(row["id"]), row["society"], row["external_id"], row["version"], content, row["content_hash"], row["deleted"]
    )


def known_of(row: Any) -> Known:
    return Known(str(row[0]), row[1], row[2], row[3], row[4], row[5])


def person_values(person: Person, now: datetime) -> dict[str, Any]:
    """Column values of a person (new or changed; `created_at` is the caller's to add)."""
    c = person.content
    return {
        "id": uuid.UUID(person.id),
        "society": person.society,
        "external_id": person.external_id,
        "content_hash": person.content_hash,
        "version": person.version,
        "deleted": person.deleted,
        **{name: c.get(name) for name in PERSONAL_FIELDS},
        "groups": c.get("groups", []),
        "country": c.get("country"),
        "province": c.get("province"),
        "reserve": bool(c.get("reserve", False)),
        "fields": c.get("fields", []),
        "posts": c.get("posts", []),
        "updated_at": now,
    }


def post_values(person: Person) -> list[dict[str, Any]]:
    return [
        {
            "person_id": uuid.UUID(person.id),
            "position": position,
            "society": person.society,
            "organization": post["organization"],
            "organization_country": post["organization_country"],
            "role": post["role"],
            "start_date": date.fromisoformat(post["start_date"]),
            "end_date": date.fromisoformat(post["end_date"]) if post["end_date"] else None,
        }
        for position, post in enumerate(person.content.get("posts", []))
    ]


class SqlWriter:
    """A society's writer on one SQLAlchemy session (SQLite)."""

    def __init__(self, session: AsyncSession, society: str, topic: str) -> None:
        self.session = session
        self.society = society
        self.topic = topic

    async def known(self, external_ids: Sequence[str]) -> dict[str, Known]:
        found: dict[str, Known] = {}
        for start in range(0, len(external_ids), 500):
            chunk = list(external_ids[start : start + 500])
            rows = await self.session.execute(
                select(*_KNOWN).where(persons.c.society == self.society, persons.c.external_id.in_(chunk))
            )
            for row in rows:
                found[row[2]] = known_of(row)
        return found

    async def absent(self, present: Collection[str]) -> list[Known]:
        rows = await self.session.execute(
            select(*_KNOWN)
            .where(persons.c.society == self.society, persons.c.deleted.is_(False))
            .order_by(persons.c.id)
        )
        return [known_of(row) for row in rows if row[2] not in present]

    async def by_id(self, person_id: uuid.UUID) -> Known | None:
        row = (await self.session.execute(select(*_KNOWN).where(persons.c.id == person_id))).first()
        return known_of(row) if row is not None else None

    async def write(self, changes: Changes) -> None:
        now = datetime.now(UTC)
        session = self.session
        if changes.created:
            await session.execute(
                insert(persons), [{**person_values(p, now), "created_at": now} for p in changes.created]
            )
        rewritten = [*changes.updated, *changes.erased]
        if rewritten:
            values = [{**person_values(p, now), "pid": uuid.UUID(p.id)} for p in rewritten]
            for row in values:
                del row["id"], row["society"]
            statement = update(persons).where(persons.c.id == bindparam("pid"))
            await session.execute(statement, values)  # executemany of one UPDATE per person
            await session.execute(
                delete(person_posts).where(person_posts.c.person_id.in_([uuid.UUID(p.id) for p in rewritten]))
            )
        posts = [row for p in [*changes.created, *changes.updated] for row in post_values(p)]
        if posts:
            await session.execute(insert(person_posts), posts)
        await stage(session, outbox, changes.messages, self.topic)
        if changes.audit:
            await session.execute(
                insert(audit_log),
                [
                    audit_values(
                        actor=changes.actor, action=n.action, entity=n.entity, entity_id=n.entity_id, changes=n.changes
                    )
                    for n in changes.audit
                ],
            )

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


class SqlTalentStore:
    """Reads on both databases; writes through `SqlWriter` (SQLite)."""

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], topic: str) -> None:
        self.engine = engine
        self.sessions = sessions
        self.topic = topic
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def writer(self, society: str) -> AsyncIterator[SqlWriter]:
        lock = self._locks.setdefault(society, asyncio.Lock())
        async with lock, self.sessions() as session:
            yield SqlWriter(session, society, self.topic)

    async def get(self, person_id: uuid.UUID) -> Person | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(persons).where(persons.c.id == person_id))).mappings().first()
        return person_of(row) if row is not None else None

    async def list_persons(self, where: PersonFilter, *, limit: int, after: uuid.UUID | None) -> list[Person]:
        c = persons.c
        conditions: list[ColumnElement[bool]] = [c.deleted.is_(False)]
        if after is not None:
            conditions.append(c.id > after)
        if where.society is not None:
            conditions.append(c.society == where.society)
        if where.country is not None:
            conditions.append(c.country == where.country)
        if where.reserve is not None:
            conditions.append(c.reserve.is_(where.reserve))
        if where.group is not None:
            conditions.append(json_list_holds(c.groups, where.group, dialect=self.engine.dialect.name))
        post = select(literal(1)).where(person_posts.c.person_id == c.id)
        if where.has_post is not None:
            conditions.append(exists(post) if where.has_post else ~exists(post))
        if where.organization is not None:
            conditions.append(exists(post.where(person_posts.c.organization == where.organization)))
        statement = select(persons).where(and_(*conditions)).order_by(c.id).limit(limit)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [person_of(row) for row in rows]

    async def list_posts(
        self, where: PostFilter, *, limit: int, after: tuple[uuid.UUID, int] | None
    ) -> list[PostEntry]:
        p = person_posts.c
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            conditions.append(or_(p.person_id > after[0], and_(p.person_id == after[0], p.position > after[1])))
        if where.society is not None:
            conditions.append(p.society == where.society)
        if where.role is not None:
            conditions.append(p.role == where.role)
        if where.organization is not None:
            conditions.append(p.organization == where.organization)
        statement = select(person_posts).order_by(p.person_id, p.position).limit(limit)
        if conditions:
            statement = statement.where(and_(*conditions))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [
            PostEntry(
                str(r["person_id"]),
                r["position"],
                r["society"],
                r["organization"],
                r["organization_country"],
                r["role"],
                r["start_date"],
                r["end_date"],
            )
            for r in rows
        ]
