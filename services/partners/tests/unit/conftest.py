"""The unit tier: the use cases on the in-memory store, a clock the test sets."""

from __future__ import annotations

import pytest
from partners.application.use_cases import PartnersService

from .fake_store import FakeDocuments, FakeStore, sequential_id
from .support import Clock


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: FakeStore, clock: Clock) -> PartnersService:
    return PartnersService(store, FakeDocuments(), today=clock, new_id=sequential_id)
