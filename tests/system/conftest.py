import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from common.testing.infra import RestartableBroker

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tests import `harness`

from harness import SERVICES, System


@pytest.fixture(scope="session")
def restartable_broker() -> Iterator[RestartableBroker]:
    """A broker of this session's own (never the shared one on 9092), which a fault test may stop."""
    broker = RestartableBroker.on_free_ports()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        broker.remove_files()


@pytest.fixture
async def make_system(make_database, kafka_bootstrap, topic_prefix, tmp_path):
    started: list[System] = []

    async def make(
        name: str,
        *,
        workers: int = 1,
        bootstrap: str | None = None,
        databases: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> System:
        """The four services as processes, each on a database of its own (`databases` names some)."""
        databases = dict(databases or {})
        for service in SERVICES:
            databases.setdefault(service, await make_database(f"{name}_{service}"))
        system = System(
            databases=databases,
            bootstrap=bootstrap or kafka_bootstrap,
            prefix=f"{topic_prefix}{name}.",
            logs=tmp_path,
            workers=workers,
            env=env,
        )
        started.append(system)
        system.start()
        return system

    yield make
    for system in started:
        system.stop()
