"""What the projections need from the layers around them, as two small interfaces they own.

`ProjectionWriter` is the storage of one generation inside one transaction: the projections compute a
batch's effect in memory and hand it over as plain writes ("apply these deltas"). Its implementations
live in `reporting/adapters/` (PostgreSQL, SQLite) and an in-memory fake serves the unit tests; the
composition root picks one, nothing here knows which.

`ChangeAnnouncer` is how the projections tell the stream which regions changed: the stream implements
it (PostgreSQL NOTIFY inside the batch's transaction), so no arrow runs from projections up to stream.

`GenerationStore` is what the readers and the rebuild need of the generations' storage beyond plain SQL,
where PostgreSQL and SQLite differ (snapshots, the rebuild's lock, processes, announcements); it is
declared here, beside the generations' writer, so the adapters below the readers can implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from reporting.projections.attribution import Contribution, MetricKey, RefKey
from reporting.projections.event_facts import EventFacts


@dataclass
class StoredAggregate:
    """A non-event aggregate as last applied: its version, facts, and what it contributed."""

    version: int
    facts: dict[str, Any] | None
    contribution: Contribution


@dataclass
class AggregateRow:
    kind: str
    id: str
    version: int
    facts: dict[str, Any] | None
    contribution: Contribution
    changed_at: datetime | None  # None: keep the stored time (a re-attribution, not a change)


@dataclass
class EventRow:
    id: str
    version: int
    facts: EventFacts


@dataclass
class AgreementRegionRow:
    agreement_id: str
    region: str
    signed_year: int
    status: str
    expires_on: date | None


@dataclass
class Writes:
    """Everything a batch writes to one generation, computed in memory first."""

    aggregates: list[AggregateRow] = field(default_factory=list)  # rm_aggregates (not events)
    events: list[EventRow] = field(default_factory=list)
    loaded_event_versions: dict[str, int] = field(default_factory=dict)  # events stored before: their versions
    metrics: dict[MetricKey, int] = field(default_factory=dict)  # deltas, added to the counters
    refs: dict[RefKey, int] = field(default_factory=dict)  # deltas, added to the country involvements
    rewritten_agreements: list[str] = field(default_factory=list)  # their region and org rows are replaced
    agreement_regions: list[AgreementRegionRow] = field(default_factory=list)
    agreement_orgs: list[tuple[str, str]] = field(default_factory=list)  # (org id, agreement id)
    body_changes: dict[tuple[str, str], datetime] = field(default_factory=dict)  # latest change per body


class ConcurrentApply(RuntimeError):
    """Another consumer changed some of this batch's events since they were loaded (two owners of a
    partition for a moment, during a rebalance): the batch is rolled back and retried, and re-reads them."""


class ProjectionWriter(Protocol):
    """One generation's storage, inside the caller's transaction."""

    async def live_generation(self) -> int:
        """The generation readers see, held (shared) until the transaction ends, so a rebuild's swap
        waits for this batch."""
        ...

    async def lock_partner_links(self, gen: int) -> None:
        """Let batches holding organizations or agreements of `gen` take turns (several consumers)."""
        ...

    async def load_aggregates(self, gen: int, kind: str, ids: Iterable[str]) -> dict[str, StoredAggregate]: ...

    async def load_events(self, gen: int, ids: Iterable[str]) -> dict[str, tuple[int, EventFacts]]: ...

    async def agreements_naming(self, gen: int, org_ids: Iterable[str]) -> set[str]: ...

    async def write(self, gen: int, writes: Writes) -> None:
        """Store the rows, add the deltas. Raises ConcurrentApply when an event row changed since loaded."""
        ...


class ChangeAnnouncer(Protocol):
    async def regions_changed(self, session: Any, regions: set[str]) -> None:
        """Called inside the batch's transaction, before it commits."""
        ...


WriterFactory = Callable[[Any], ProjectionWriter]  # a writer for the session of one transaction


class GenerationStore(Protocol):
    """The generations' storage as the readers and the rebuild see it, for one session."""

    @property
    def replays_in_processes(self) -> bool:
        """Whether a rebuild may replay in several processes at once, each with its own connections."""
        ...

    async def read_one_snapshot(self) -> None:
        """Make every statement of the session, up to its end, read one snapshot (read-only): a rebuild's
        swap committed between two of them must not mix two generations."""
        ...

    async def lock_rebuilds(self) -> bool:
        """Take the one-rebuild-at-a-time lock until the session's transaction ends (a crashed rebuild
        never leaves it behind); False when another rebuild holds it."""
        ...

    async def announce_swap(self, regions: Iterable[str]) -> None:
        """Inside the swap's transaction: tell every process's stream that `regions` may read differently
        once it commits."""
        ...
