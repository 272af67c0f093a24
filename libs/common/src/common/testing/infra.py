"""Finding or starting the real Kafka broker and PostgreSQL that tests use.

Kafka: KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers when a Docker engine answers; else the
local broker started by deploy/local/kafka.sh. PostgreSQL: TEST_DATABASE_URL (an admin URL that may
create databases) if set; else the local server started by deploy/local/postgres.sh.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

LOCAL_PG_ADMIN_URL = "postgresql+asyncpg://exchange_test:exchange@127.0.0.1:5432/postgres"


def repo_root() -> Path:
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "deploy" / "local" / "kafka.sh").exists():
                return candidate
    raise RuntimeError("cannot find the repository root (deploy/local/kafka.sh)")


def docker_engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def local_kafka(command: str, *, port: int = 9092, controller_port: int = 9093) -> None:
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller_port)}
    subprocess.run([str(repo_root() / "deploy/local/kafka.sh"), command], check=True, env=env)


@dataclass(frozen=True)
class RestartableBroker:
    """A broker of this session's own, on ports free when it started: stopping it cannot disturb other
    tests, nor another checkout's suite running on the same machine."""

    port: int
    controller_port: int

    @classmethod
    def on_free_ports(cls) -> RestartableBroker:
        from common.testing.live import free_port

        port = free_port()
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()
        return cls(port, controller_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        local_kafka("start", port=self.port, controller_port=self.controller_port)

    def stop(self) -> None:
        local_kafka("stop", port=self.port, controller_port=self.controller_port)

    def remove_files(self) -> None:
        home = repo_root() / ".local" / "kafka"
        shutil.rmtree(home / f"data-{self.port}", ignore_errors=True)
        for name in (f"server-{self.port}.properties", f"kafka-{self.port}.log", f"kafka-{self.port}.pid"):
            (home / name).unlink(missing_ok=True)


@contextlib.contextmanager
def kafka_bootstrap_servers() -> Iterator[str]:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
    elif docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        local_kafka("start")
        yield "127.0.0.1:9092"


def postgres_admin_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    subprocess.run([str(repo_root() / "deploy/local/postgres.sh"), "start"], check=True)
    return LOCAL_PG_ADMIN_URL


async def drop_database(admin: AsyncEngine, name: str, *, attempts: int = 10, pause: float = 2.0) -> None:
    """DROP DATABASE … WITH (FORCE) on an autocommit engine, retried: FORCE cannot end backends of
    another role (an autovacuum worker) or ones still exiting after a server stopped; both end soon."""
    for attempt in range(attempts):
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(pause)
