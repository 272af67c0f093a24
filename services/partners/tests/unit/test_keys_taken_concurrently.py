"""A unique key (ROR id, normalised name, external_ref, active membership) taken by a transaction that
committed between our check and our write: a 409 naming the winner, or — when the winner is gone again
(merged or renamed meanwhile) — the write goes through; never a 500."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from common.errors import Conflict
from partners.contracts import v1
from partners.domain.base import Body
from partners.domain.membership import Membership
from partners.domain.organization import Organization

from .fake_store import State, sequential_id
from .support import GD, TODAY, org_body, register


def _commit_organization(name: str) -> Any:
    def commit(state: State) -> None:
        org = Organization.register(id=sequential_id(), by=Body("province", "110000"), **org_body(name=name))
        state.organizations[org.id] = org

    return commit


async def test_a_concurrent_duplicate_found_again_is_a_409_naming_it(service, store):
    store.taken_concurrently["organization"] = [_commit_organization("The Royal Society")]
    with pytest.raises(Conflict) as caught:
        await service.register_organization(GD, org_body())
    (winner,) = store.state.organizations
    assert caught.value.extra["existing_id"] == winner


async def test_a_concurrent_duplicate_gone_again_lets_the_registration_through(service, store):
    store.taken_concurrently["organization"] = [lambda state: None]  # merged or renamed meanwhile
    state = await service.register_organization(GD, org_body())
    assert state["version"] == 1 and store.types() == [v1.ORGANIZATION_REGISTERED]


async def test_a_key_taken_concurrently_every_time_is_a_409_not_a_500(service, store):
    store.taken_concurrently["organization"] = [lambda state: None] * 10
    with pytest.raises(Conflict):
        await service.register_organization(GD, org_body())
    assert store.published == []


async def test_a_concurrent_membership_is_a_409_naming_it(service, store):
    org = await register(service)

    def commit(state: State) -> None:
        m = Membership(id=sequential_id(), organization_id=org["id"], member=Body("province", "440000"), since=TODAY)
        state.memberships[m.id] = m

    store.taken_concurrently["membership"] = [commit]
    with pytest.raises(Conflict) as caught:
        await service.record_membership(GD, org["id"], date(2020, 1, 1))
    assert caught.value.extra["existing_id"] in store.state.memberships
