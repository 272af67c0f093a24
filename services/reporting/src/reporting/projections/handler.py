"""The consumer's batch handler: decode (pure) and apply (one transaction per batch, with the inbox)."""

from __future__ import annotations

from collections.abc import Sequence

from common.kafka.consumer import Decoded, Delivery
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.projections.apply import BatchResult, apply_changes
from reporting.projections.changes import Change, decode_message
from reporting.projections.ports import ChangeAnnouncer, WriterFactory


class ProjectionHandler:
    """Applies the three topics to the live generation (or, for a rebuild, to a fixed one)."""

    def __init__(
        self,
        writers: WriterFactory,
        *,
        fixed_generation: int | None = None,
        announcer: ChangeAnnouncer | None = None,
    ) -> None:
        """`writers`: the storage for a batch's session (the composition root picks it). `announcer`:
        told which regions changed inside the batch's transaction (every process hears it: PostgreSQL);
        without one they are kept for `take_changed_regions` (one process: SQLite)."""
        self.writers = writers
        self.fixed_generation = fixed_generation
        self.announcer = announcer
        self.changed_regions: set[str] = set()
        self.applied = 0
        self.ignored = 0

    def decode(self, topic: str, raw: bytes) -> Decoded:
        return decode_message(raw)

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        changes = [d.decoded for d in deliveries if isinstance(d.decoded, Change)]
        if not changes:
            return
        store = self.writers(session)
        gen = self.fixed_generation if self.fixed_generation is not None else await store.live_generation()
        result: BatchResult = await apply_changes(store, gen, changes)
        if self.announcer is not None:
            await self.announcer.regions_changed(session, result.changed_regions)
        else:
            self.changed_regions |= result.changed_regions
        self.applied += result.applied
        self.ignored += result.ignored

    def take_changed_regions(self) -> set[str]:
        changed, self.changed_regions = self.changed_regions, set()
        return changed
