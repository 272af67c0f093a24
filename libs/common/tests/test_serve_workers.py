"""`serve --workers N`: /metrics answers for every worker, whichever takes the scrape (no infrastructure)."""

from __future__ import annotations

import json
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
    import logging
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
            logging.getLogger("workers").warning("answered", extra={"pid": os.getpid()})
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


def start_workers(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """`serve(..., workers=2)` as a service's CLI calls it: logging configured in the parent first."""
    (tmp_path / "workers_app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = textwrap.dedent(
        f"""
        from common.observability import configure_logging
        from common.settings import ServiceSettings
        from common.web import serve

        settings = ServiceSettings(service_name="workers", jwt_secret="x" * 32)
        configure_logging(settings.service_name, settings.log_level)
        serve("workers_app:create", settings, host="127.0.0.1", port={port}, workers=2)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    port = _free_port()
    server = start_workers(tmp_path, port)
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


def test_every_worker_logs_json_with_time_level_and_request_id(tmp_path: Path) -> None:
    port = _free_port()
    server = start_workers(tmp_path, port)
    sent: dict[str, int] = {}  # request id → the pid that answered
    try:
        deadline = time.monotonic() + 60
        while len(set(sent.values())) < 2:  # a fresh connection each time, so both workers answer
            assert time.monotonic() < deadline, f"not two workers answering: {sent}"
            request_id = f"req-{len(sent)}"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/pid", headers={"X-Request-ID": request_id}, timeout=5)
                sent[request_id] = answer.json()["pid"]
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    assert server.stderr is not None
    lines = [line for line in server.stderr.read().decode().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line that is not JSON: {line!r}") from None
    for record in records:
        assert {"time", "level", "message", "request_id", "service"} <= record.keys(), record
        assert record["service"] == "workers"
    answered = {r["request_id"]: r["pid"] for r in records if r["message"] == "answered"}
    assert answered == sent, "every request logged by the worker that answered it, with its request id"
