"""Applying a batch of changes to one generation of the projections, through a `ProjectionWriter`.

Per aggregate only the newest version in the batch matters (messages carry the whole state); a version
not newer than the one applied is ignored. The batch's effect is computed here in memory as deltas —
old contribution subtracted, new one added — and handed to the writer as plain writes, which stores
them with a few bulk statements inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reporting.contracts.inbound import AgreementState, EventState, OrganizationState, PersonState
from reporting.projections.attribution import (
    BODY_PREFIX,
    EMPTY,
    Contribution,
    agreement_contribution,
    agreement_facts,
    agreement_rows,
    expand_merged,
    merged_blocks,
    organization_contribution,
    organization_facts,
    person_contribution,
)
from reporting.projections.changes import Change
from reporting.projections.event_facts import EventDeltas
from reporting.projections.event_facts import event_facts as facts_of_event
from reporting.projections.ports import (
    AggregateRow,
    AgreementRegionRow,
    EventRow,
    ProjectionWriter,
    StoredAggregate,
    Writes,
)


@dataclass
class BatchResult:
    applied: int = 0
    ignored: int = 0
    changed_regions: set[str] = field(default_factory=set)


def _note_body(body_changes: dict[tuple[str, str], datetime], change: Change) -> None:
    if change.body is not None:
        previous_at = body_changes.get(change.body)
        if previous_at is None or change.at > previous_at:
            body_changes[change.body] = change.at


async def apply_changes(store: ProjectionWriter, gen: int, changes: Sequence[Change]) -> BatchResult:
    result = BatchResult()
    events: dict[str, Change] = {}  # the newest version of each aggregate in the batch, events apart
    by_kind: dict[str, dict[str, Change]] = {}
    for change in changes:
        newest = events if change.kind == "event" else by_kind.setdefault(change.kind, {})
        current = newest.get(change.id)
        if current is None or change.version > current.version:
            newest[change.id] = change
    result.ignored = len(changes) - len(events) - sum(map(len, by_kind.values()))

    writes = Writes()
    await _apply_events(store, gen, events, writes, result)

    if "organization" in by_kind or "agreement" in by_kind:
        await store.lock_partner_links(gen)
    stored: dict[str, dict[str, StoredAggregate]] = {}
    for kind, items in by_kind.items():
        stored[kind] = await store.load_aggregates(gen, kind, items)

    fresh: dict[tuple[str, str], Change] = {}
    for kind, items in by_kind.items():
        for aggregate_id, change in items.items():
            previous = stored[kind].get(aggregate_id)
            if previous is not None and change.version <= previous.version:
                result.ignored += 1  # an older (or the same) version than the one applied
                continue
            fresh[(kind, aggregate_id)] = change

    # Organizations whose country changed re-attribute the agreements naming them.
    org_facts_new: dict[str, dict[str, Any] | None] = {}
    for (kind, aggregate_id), change in fresh.items():
        if kind == "organization":
            org_state = change.state if isinstance(change.state, OrganizationState) else None
            org_facts_new[aggregate_id] = organization_facts(org_state)
    agreements_to_recompute: set[str] = set()
    if org_facts_new:
        stored_orgs = stored.get("organization", {})
        changed_orgs = [
            o for o, facts in org_facts_new.items() if (stored_orgs[o].facts if o in stored_orgs else None) != facts
        ]
        if changed_orgs:
            agreements_to_recompute = await store.agreements_naming(gen, changed_orgs)
    agreements_to_recompute -= {i for (k, i) in fresh if k == "agreement"}
    stored_agreements = stored.setdefault("agreement", {})
    if agreements_to_recompute:
        stored_agreements.update(await store.load_aggregates(gen, "agreement", agreements_to_recompute))

    # The organizations' countries the agreements need: this batch's first, then the stored ones.
    needed_orgs: set[str] = set()
    new_agreement_facts: dict[str, dict[str, Any]] = {}
    for (kind, aggregate_id), change in fresh.items():
        if kind == "agreement" and isinstance(change.state, AgreementState):
            new_agreement_facts[aggregate_id] = agreement_facts(change.state)
    for aggregate_id in agreements_to_recompute:
        facts = stored_agreements[aggregate_id].facts
        if facts is not None:
            new_agreement_facts[aggregate_id] = facts
    for facts in new_agreement_facts.values():
        needed_orgs.update(facts["partner_org_ids"])
    org_country: dict[str, str | None] = {o: (f or {}).get("country") for o, f in org_facts_new.items()}
    missing = needed_orgs - set(org_country)
    if missing:
        for org_id, org in (await store.load_aggregates(gen, "organization", missing)).items():
            org_country[org_id] = (org.facts or {}).get("country")

    signed: list[tuple[Contribution, int]] = []

    def account(kind: str, aggregate_id: str, version: int, at: datetime | None, facts: Any, new: Contribution) -> None:
        previous = stored.get(kind, {}).get(aggregate_id)
        if previous is not None:
            signed.append((previous.contribution, -1))
            result.changed_regions |= previous.contribution.regions()
        signed.append((new, +1))
        result.changed_regions |= new.regions()
        writes.aggregates.append(AggregateRow(kind, aggregate_id, version, facts, new, at))

    for (kind, aggregate_id), change in sorted(fresh.items()):
        state = change.state
        if kind == "organization":
            facts = org_facts_new[aggregate_id]
            account(kind, aggregate_id, change.version, change.at, facts, organization_contribution(facts))
        elif kind == "person":
            contribution = person_contribution(state if isinstance(state, PersonState) else None)
            account(kind, aggregate_id, change.version, change.at, None, contribution)
        elif kind == "agreement":
            a_facts: dict[str, Any] | None = new_agreement_facts.get(aggregate_id)
            contribution = agreement_contribution(a_facts, org_country.get) if a_facts else EMPTY
            account(kind, aggregate_id, change.version, change.at, a_facts, contribution)
            writes.rewritten_agreements.append(aggregate_id)
            if a_facts:
                _agreement_rows(aggregate_id, a_facts, contribution, writes)
        _note_body(writes.body_changes, change)
        result.applied += 1
    for aggregate_id in sorted(agreements_to_recompute):
        previous_agreement = stored_agreements.get(aggregate_id)
        facts = new_agreement_facts.get(aggregate_id)
        if previous_agreement is None or facts is None:
            continue
        contribution = agreement_contribution(facts, org_country.get)
        account("agreement", aggregate_id, previous_agreement.version, None, facts, contribution)
        writes.rewritten_agreements.append(aggregate_id)
        _agreement_rows(aggregate_id, facts, contribution, writes)

    expand_merged(merged_blocks(signed), writes.metrics)
    for contribution, sign in signed:
        contribution.add_refs_to(writes.refs, sign)
    await store.write(gen, writes)
    result.changed_regions = {r for r in result.changed_regions if not r.startswith(BODY_PREFIX)}
    return result


def _agreement_rows(aggregate_id: str, facts: dict[str, Any], contribution: Contribution, writes: Writes) -> None:
    rows = agreement_rows(facts, contribution)
    for region in rows.regions:
        writes.agreement_regions.append(
            AgreementRegionRow(aggregate_id, region, rows.signed_year, rows.status, rows.expires_on)
        )
    for org_id in facts["partner_org_ids"]:
        writes.agreement_orgs.append((org_id, aggregate_id))


async def _apply_events(
    store: ProjectionWriter,
    gen: int,
    newest: dict[str, Change],
    writes: Writes,
    result: BatchResult,
) -> None:
    """The events' fast path: old facts subtracted, new ones added, summed, then expanded once (the
    first to write deltas into `writes`); the facts rows to store are added sorted by id."""
    if not newest:
        return
    stored = await store.load_events(gen, newest)
    writes.loaded_event_versions.update((i, s[0]) for i, s in stored.items())
    deltas = EventDeltas()
    rows = writes.events
    body_changes = writes.body_changes
    for aggregate_id in sorted(newest):
        change = newest[aggregate_id]
        facts = change.facts
        if facts is None and isinstance(change.state, EventState):
            facts = facts_of_event(change.state)
        if facts is None:
            raise TypeError(f"event change {aggregate_id} carries no event state")
        previous = stored.get(aggregate_id)
        if previous is not None:
            if change.version <= previous[0]:
                result.ignored += 1  # an older (or the same) version than the one applied
                continue
            deltas.add(previous[1], -1)
        deltas.add(facts, +1)
        rows.append(EventRow(aggregate_id, change.version, facts))
        if change.body is not None:
            previous_at = body_changes.get(change.body)
            if previous_at is None or change.at > previous_at:
                body_changes[change.body] = change.at
        result.applied += 1
    deltas.expand(writes.metrics, writes.refs)  # every key so far is an event's
    result.changed_regions |= {k[0] for k in writes.metrics} | {k[1] for k in writes.refs}
