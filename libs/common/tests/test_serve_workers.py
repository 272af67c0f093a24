"""`serve --workers N`: /metrics answers for every worker, whichever takes the scrape (no infrastructure)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

APP = textwrap.dedent(
    """
    import os
    from contextlib import asynccontextmanager

    from common.settings import ServiceSettings
    from common.web import create_service_app


    @asynccontextmanager
    async def lifespan(_app):
        yield


    def create(_settings=None):
        settings = ServiceSettings(service_name="workers", jwt_secret="x" * 32)
        app = create_service_app(settings=settings, title="t", description="t", lifespan=lifespan)

        @app.get("/pid")
        async def pid() -> dict[str, int]:
            return {"pid": os.getpid()}

        return app
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _served_count(metrics: str) -> float:
    pattern = r'^http_requests_total\{[^}]*route="/pid"[^}]*\} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, metrics, flags=re.MULTILINE))


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    (tmp_path / "workers_app.py").write_text(APP)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable,
        "-c",
        f"from common.web import serve; serve('workers_app:create', None, host='127.0.0.1', port={port}, workers=2)",
    ]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        sent = 0
        while len(pids) < 2 or sent < 40:  # a fresh connection each time, so both workers answer
            assert time.monotonic() < deadline, f"not two workers answering: {pids}"
            try:
                pids.add(httpx.get(f"{base}/pid", timeout=5).json()["pid"])
                sent += 1
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                time.sleep(0.2)
        scrapes = [_served_count(httpx.get(f"{base}/metrics", timeout=5).text) for _ in range(10)]
        assert scrapes == [sent] * 10, f"{sent} requests served by {len(pids)} workers; the scrapes counted {scrapes}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
