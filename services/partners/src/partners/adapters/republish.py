"""What `partners republish` writes again: every aggregate's current state, as the message of its last
change (a renewal notice is not repeated: the state it carried is the agreement's anyway)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.republish import Published, RepublishedAggregate

from partners.adapters import store
from partners.adapters.tables import agreements, memberships, organizations
from partners.contracts import v1


def _organization(row: Mapping[str, Any]) -> Published:
    state = v1.organization_state(store._organization(row))
    if state["status"] == "merged":
        kind = v1.ORGANIZATION_MERGED
    else:
        kind = v1.ORGANIZATION_REGISTERED if state["version"] == 1 else v1.ORGANIZATION_UPDATED
    return Published(kind, state["id"], state)


_AGREEMENT_TYPES = {"expired": v1.AGREEMENT_EXPIRED, "terminated": v1.AGREEMENT_TERMINATED}


def _agreement(row: Mapping[str, Any]) -> Published:
    state = v1.agreement_state(store._agreement(row))
    kind = _AGREEMENT_TYPES.get(state["status"]) or (
        v1.AGREEMENT_SIGNED if state["version"] == 1 else v1.AGREEMENT_UPDATED
    )
    return Published(kind, state["id"], state)


def _membership(row: Mapping[str, Any]) -> Published:
    state = v1.membership_state(store._membership(row))
    kind = v1.MEMBERSHIP_ENDED if state["status"] == "ended" else v1.MEMBERSHIP_RECORDED
    return Published(kind, state["id"], state)


AGGREGATES = [
    RepublishedAggregate(
        name="organizations", table=organizations, topic=v1.TOPIC, source=v1.SOURCE, published=_organization
    ),
    RepublishedAggregate(name="agreements", table=agreements, topic=v1.TOPIC, source=v1.SOURCE, published=_agreement),
    RepublishedAggregate(
        name="memberships", table=memberships, topic=v1.TOPIC, source=v1.SOURCE, published=_membership
    ),
]
