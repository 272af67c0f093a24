"""`make run`: migrate, start the four services, load the demo dataset, print the URLs.

Ctrl-C (or `make stop` from another terminal) stops what this started. SQLite files under .local/
are the default databases; `EXCHANGE_DB=postgres` uses the local PostgreSQL (deploy/local/postgres.sh).
`EXCHANGE_RUN_DIR` (default .local/) holds the SQLite files, logs and pid file, and
`EXCHANGE_PORT_OFFSET` (default 0) moves the four ports: the system test runs a second copy so.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
        load_demo_partners()
        load_demo_talent()
        print(f"\nexchange-tracker is running (logs in {logs}/):")
        for service, port in SERVICES.items():
            print(f"  {service:<10} http://127.0.0.1:{port}/docs")
        print(f"  dashboard  http://127.0.0.1:{SERVICES['reporting']}/dashboard/")
        print(f"\nA read token for the dashboard (24 h):\n  {token('hq', 'HQ', 'reporting:read admin')}")
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
    """Post the demo events (idempotent by external_ref, so re-running `make run` adds nothing)."""
    events = json.loads((ROOT / "deploy" / "local" / "demo_events.json").read_text())
    headers = {"Authorization": f"Bearer {token('hq', 'HQ', 'admin events:write')}"}
    try:
        response = httpx.post(
            f"http://127.0.0.1:{SERVICES['events']}/v1/events/batch",
            json={"events": events},
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        print(f"demo data not loaded: {exc}")
        return
    if response.status_code == 404:
        print("demo data not loaded: the events API is not there yet")
        return
    statuses = [item.get("status") for item in response.json().get("items", response.json().get("results", []))]
    print(
        f"demo dataset: {len(events)} events posted ({', '.join(f'{s}: {statuses.count(s)}' for s in set(statuses))})"
    )


def load_demo_partners() -> None:
    """Post the demo organizations and agreements. Idempotent: an organization posted before answers 409
    naming its id, an agreement posted before (same external_ref, same content) 200."""
    demo = json.loads((ROOT / "deploy" / "local" / "demo_partners.json").read_text())
    base = f"http://127.0.0.1:{SERVICES['partners']}/v1/partners"
    headers = {"Authorization": f"Bearer {token('hq', 'HQ', 'admin partners:write')}"}
    ids: dict[str, str] = {}
    created = {"organizations": 0, "agreements": 0}
    try:
        with httpx.Client(headers=headers, timeout=30) as client:
            for org in demo["organizations"]:
                body = {k: v for k, v in org.items() if k != "key"}
                response = client.post(f"{base}/organizations", json=body)
                if response.status_code not in (201, 409):
                    print(f"demo partners not loaded: {response.status_code} {response.text[:200]}")
                    return
                created["organizations"] += response.status_code == 201
                ids[org["key"]] = response.json()["id" if response.status_code == 201 else "existing_id"]
            for agreement in demo["agreements"]:
                body = {k: v for k, v in agreement.items() if k != "partners"}
                body["partner_org_ids"] = [ids[key] for key in agreement["partners"]]
                response = client.post(f"{base}/agreements", json=body)
                if response.status_code not in (200, 201):
                    print(f"demo agreement {agreement['external_ref']} not loaded: {response.status_code}")
                    continue
                created["agreements"] += response.status_code == 201
    except httpx.HTTPError as exc:
        print(f"demo partners not loaded: {exc}")
        return
    print(
        f"demo partners: {len(demo['organizations'])} organizations ({created['organizations']} new), "
        f"{len(demo['agreements'])} agreements ({created['agreements']} new)"
    )


DEMO_SOCIETIES = {"CMES": 400, "CCS": 250, "CSEE": 150}  # society → pool size
DEMO_GROUPS = ("leading_scientist", "engineer", "young_scientist", "woman_scientist", "youth", "overseas_expert")
DEMO_ROLES = ("president", "vice_president", "executive_board", "secretary_general", "committee_chair", "member")
DEMO_PROVINCES = ("110000", "310000", "440000", "320000", "510000", "420000", "610000", "650000")
DEMO_ORGANIZATIONS = (("WFEO", "FR"), ("ISC", "FR"), ("IUPAC", "US"), ("CIGRE", "FR"), ("ISO", "CH"), ("PSA", "US"))


def demo_pool(society: str, size: int) -> list[dict[str, object]]:
    """A society's made-up pool, the same every time (a seeded generator), so a second sync is unchanged."""
    rng = random.Random(society)
    people = []
    for n in range(1, size + 1):
        abroad = rng.random() < 0.12
        posts = []
        if rng.random() < 0.25:
            organization, seat = rng.choice(DEMO_ORGANIZATIONS)
            start = rng.randint(2016, 2025)
            posts.append(
                {
                    "organization": organization,
                    "organization_country": seat,
                    "role": rng.choice(DEMO_ROLES),
                    "start_date": f"{start}-0{rng.randint(1, 9)}-01",
                    "end_date": None if rng.random() < 0.6 else f"{start + rng.randint(1, 4)}-12-31",
                }
            )
        people.append(
            {
                "external_id": f"{society}-{n:05d}",
                "name": f"示例人员 {society}-{n:05d}",
                "groups": sorted(set(rng.sample(DEMO_GROUPS, rng.randint(1, 2)))),
                "country": rng.choice(("US", "DE", "JP", "GB", "FR")) if abroad else "CN",
                "province": None if abroad else rng.choice(DEMO_PROVINCES),
                "reserve": rng.random() < 0.2,
                "posts": posts,
            }
        )
    return people


def load_demo_talent() -> None:
    """Sync a few societies' pools in full (idempotent: a second `make run` finds them all unchanged)."""
    summary = []
    for society, size in DEMO_SOCIETIES.items():
        headers = {"Authorization": f"Bearer {token('society', society, 'talent:sync')}"}
        try:
            response = httpx.post(
                f"http://127.0.0.1:{SERVICES['talent']}/v1/talent/sync",
                json={"mode": "full", "records": demo_pool(society, size)},
                headers=headers,
                timeout=60,
            )
        except httpx.HTTPError as exc:
            print(f"demo talent pools not loaded: {exc}")
            return
        if response.status_code != 200:
            print(f"demo talent pool of {society} not loaded: {response.status_code}")
            continue
        answer = response.json()
        summary.append(f"{society} {answer['created']} created, {answer['unchanged']} unchanged")
    print(f"demo talent pools: {'; '.join(summary)}")


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
