"""The consumer's batch handler: decode (pure) and apply (one transaction per batch, with the inbox)."""

from __future__ import annotations

from collections.abc import Sequence

from common.kafka.consumer import Decoded, Delivery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.tables import generation
from reporting.projections.changes import Change, decode_message
from reporting.projections.store import BatchResult, apply_changes
from reporting.stream.changes_channel import announce


async def live_generation(session: AsyncSession) -> int:
    """The generation readers see. FOR SHARE: a rebuild's swap (FOR UPDATE) waits for this batch to
    commit, and a batch that starts during the swap waits for it and then writes the new generation."""
    value = await session.scalar(select(generation.c.current).where(generation.c.id == 1).with_for_update(read=True))
    if value is None:
        raise RuntimeError("rm_generation is empty: run `reporting migrate`")
    return int(value)


class ProjectionHandler:
    """Applies the three topics to the live generation (or, for a rebuild, to a fixed one)."""

    def __init__(self, *, fixed_generation: int | None = None, announce: bool = False) -> None:
        """`announce`: tell every reporting process which regions changed, in the batch's transaction
        (PostgreSQL NOTIFY, stream/changes_channel.py); otherwise they are kept for
        `take_changed_regions` (one process: SQLite)."""
        self.fixed_generation = fixed_generation
        self.announce = announce
        self.changed_regions: set[str] = set()
        self.applied = 0
        self.ignored = 0

    def decode(self, topic: str, raw: bytes) -> Decoded:
        return decode_message(raw)

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        changes = [d.decoded for d in deliveries if isinstance(d.decoded, Change)]
        if not changes:
            return
        gen = self.fixed_generation if self.fixed_generation is not None else await live_generation(session)
        result: BatchResult = await apply_changes(session, gen, changes)
        if self.announce:
            await announce(session, result.changed_regions)
        else:
            self.changed_regions |= result.changed_regions
        self.applied += result.applied
        self.ignored += result.ignored

    def take_changed_regions(self) -> set[str]:
        changed, self.changed_regions = self.changed_regions, set()
        return changed
