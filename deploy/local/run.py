"""`make run`: migrate, start the four services, load the demo dataset, print the URLs.

Ctrl-C (or `make stop` from another terminal) stops what this started. SQLite files under .local/
are the default databases; `EXCHANGE_DB=postgres` uses the local PostgreSQL (deploy/local/postgres.sh).
`EXCHANGE_RUN_DIR` (default .local/) holds the SQLite files, logs and pid file, and
`EXCHANGE_PORT_OFFSET` (default 0) moves the four ports: the system test runs a second copy so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import demo
import httpx
from common.auth import mint_token
from common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("EXCHANGE_RUN_DIR") or ROOT / ".local")
PIDS = RUN_DIR / "run.pids"
_OFFSET = int(os.environ.get("EXCHANGE_PORT_OFFSET") or 0)
SERVICES = {
    name: port + _OFFSET for name, port in {"partners": 8001, "events": 8002, "talent": 8003, "reporting": 8004}.items()
}


def database_url(service: str) -> str:
    if os.environ.get("EXCHANGE_DB") == "postgres":
        return f"postgresql+asyncpg://{service}:exchange@127.0.0.1:5432/{service}"
    return f"sqlite+aiosqlite:///{RUN_DIR}/{service}.db"


def cli(service: str) -> str:
    """The service's console script, installed in the same environment as this interpreter."""
    return str(Path(sys.executable).parent / service)


def service_env(service: str) -> dict[str, str]:
    return {
        "EXCHANGE_ENVIRONMENT": "development",  # `make run` is a laptop: the development secret is allowed
        **os.environ,
        f"{service.upper()}_DATABASE_URL": database_url(service),
        # the demo loader posts thousands of requests with one token: no rate limit on a laptop
        f"{service.upper()}_RATE_LIMIT_PER_MINUTE": "0",
        "PYTHONUNBUFFERED": "1",
    }


def serve_options(service: str) -> list[str]:
    """On PostgreSQL the reporting service runs a process per core: they share the consumer group's
    partitions and every stream sees all changes (LISTEN/NOTIFY). SQLite is one process."""
    if service == "reporting" and os.environ.get("EXCHANGE_DB") == "postgres":
        return ["--workers", str(min(os.cpu_count() or 1, 4))]
    return []


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop_on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: `uv run` forwards the signal a second time
    raise KeyboardInterrupt  # `kill`/`timeout` stop the services too, as Ctrl-C does


def start() -> None:
    busy = [f"{service} :{port}" for service, port in SERVICES.items() if port_in_use(port)]
    if busy:
        raise SystemExit(f"port(s) in use: {', '.join(busy)} — another `make run`? `make stop` ends it")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        print(f"migrating {service} ({database_url(service).split('://')[0]})")
        subprocess.run([cli(service), "migrate"], check=True, env=service_env(service), cwd=ROOT)
    processes = []
    logs = RUN_DIR / "logs"
    logs.mkdir(exist_ok=True)
    for service, port in SERVICES.items():
        log = (logs / f"{service}.log").open("ab")
        processes.append(
            subprocess.Popen(
                [cli(service), "serve", "--port", str(port), *serve_options(service)],
                env=service_env(service),
                cwd=ROOT,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
    PIDS.write_text("\n".join(str(p.pid) for p in processes))
    try:
        wait_healthy()
        load_demo()
        print(f"\nexchange-tracker is running (logs in {logs}/):")
        for service, port in SERVICES.items():
            print(f"  {service:<10} http://127.0.0.1:{port}/docs")
        # Read-only (no admin), in the fragment: the browser never sends it; the page keeps it and
        # takes it out of the address bar.
        read = token("hq", "HQ", "reporting:read")
        print(f"  dashboard  http://127.0.0.1:{SERVICES['reporting']}/dashboard/")
        print(f"\nThe dashboard, signed in (24 h):\n  http://127.0.0.1:{SERVICES['reporting']}/dashboard/#token={read}")
        print(f"\nA read token for the dashboard (24 h):\n  {read}")
        print("\nCtrl-C or `make stop` stops everything.")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print(f"a service exited; see {logs}/. Stopping the others.")
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        stop()


def token(kind: str, code: str, scopes: str) -> str:
    # signed as the services verify it: EXCHANGE_JWT_KEYS' current key (else EXCHANGE_JWT_SECRET), the issuer
    settings = ServiceSettings(environment=os.environ.get("EXCHANGE_ENVIRONMENT", "development"))
    kid, secret = settings.signing_key
    claims = {"iss": settings.jwt_issuer} if settings.jwt_issuer else None
    return mint_token(secret=secret, org_kind=kind, org_code=code, scopes=scopes, ttl=24 * 3600, kid=kid, claims=claims)


def wait_healthy(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for service, port in SERVICES.items():
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    print(f"{service} is up on :{port}")
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{service} did not answer /healthz; see {RUN_DIR}/logs/{service}.log")
            time.sleep(0.3)


def load_demo() -> None:
    """The demo dataset (deploy/local/demo.py) through the public APIs, each body with its own token.
    Idempotent: a second `make run` adds nothing. `EXCHANGE_DEMO_SCALE` (default 1) scales it."""
    scale = float(os.environ.get("EXCHANGE_DEMO_SCALE") or 1.0)
    print(f"loading the demo dataset (scale {scale:g})")
    urls = {service: f"http://127.0.0.1:{port}" for service, port in SERVICES.items()}
    try:
        for line in demo.load(urls, token, scale=scale):
            print(line)
    except (httpx.HTTPError, demo.LoadError) as exc:
        print(f"demo dataset not (fully) loaded: {exc}")


def stop() -> None:
    if not PIDS.exists():
        print("nothing to stop")
        return
    for pid in (int(p) for p in PIDS.read_text().split()):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    PIDS.unlink(missing_ok=True)
    print("services stopped")


if __name__ == "__main__":
    stop() if sys.argv[1:] == ["stop"] else start()
