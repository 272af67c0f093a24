"""`reporting rebuild`: replay every topic into a fresh generation and swap it in — the figures are
identical to the live ones and the API answers throughout, also while messages keep arriving, in one
process or several; a failed replaying process fails the rebuild and leaves the live figures alone;
poison messages are skipped and named, as the live consumer dead-letters them, and a transient failure
fails the rebuild."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from pathlib import Path

import pytest
from common.db import create_engine, session_factory
from common.testing.plugin import wait_until
from reporting.adapters.tables import event_facts, generation, metadata
from reporting.read.queries import catalogue_codes
from reporting.rebuild import replay as rebuild_module
from reporting.rebuild.replay import RebuildWorkerFailed, Skipped, rebuild
from reporting.stream.changes_channel import ChangeListener
from sqlalchemy import func, select, text
from support import (
    EVENTS,
    PARTNERS,
    TALENT,
    agreement_message,
    event_data,
    event_message,
    organization_message,
    person_message,
    prepare,
    running_service,
)


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(make_database, "rep_rebuild", kafka_bootstrap, f"{topic_prefix}rebuild.", jwt_secret)
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


def history(rng: random.Random, n_events: int = 400) -> dict[str, list]:
    countries = ["DE", "FR", "US", "JP", "TH", "KZ", "BR", "NG", "SE", "RU"]
    provinces = ["110000", "310000", "440000", "650000", "540000"]
    events, partners, talent = [], [], []
    last = {}
    for _ in range(n_events):
        data = event_data(
            host_province=rng.choice([*provinces, None]),
            host_country="CN",
            organizer=rng.choice([("province", rng.choice(provinces)), ("society", "CAST")]),
            countries=rng.sample(countries, rng.randint(0, 3)),
            start_date=f"{rng.choice([2023, 2024, 2025])}-0{rng.randint(1, 9)}-10",
            participants=rng.randint(0, 300),
            flagship=rng.random() < 0.1,
        )
        last[data["id"]] = data
        events.append(event_message(data))
    for event_id in rng.sample(sorted(last), n_events // 5):
        data = {**last[event_id], "version": 2, "countries": rng.sample(countries, 2), "participants": 7}
        events.append(event_message(data))
    for event_id in rng.sample(sorted(last), n_events // 10):
        events.append(event_message({**last[event_id], "version": 3, "status": "cancelled"}))
    orgs = [str(uuid.uuid4()) for _ in range(20)]
    for org in orgs:
        partners.append(organization_message(org, rng.choice([*countries, None])))
    for i in range(30):
        partners.append(
            agreement_message(
                str(uuid.uuid4()),
                rng.sample(orgs, 2),
                signed_on=f"202{rng.randint(2, 5)}-02-0{i % 9 + 1}",
                expires_on=rng.choice([None, "2026-12-31", "2030-01-01"]),
            )
        )
    for _ in range(60):
        talent.append(
            person_message(
                str(uuid.uuid4()),
                groups=rng.sample(["youth", "engineer", "woman_scientist"], 2),
                country=rng.choice(["CN", "DE", "US"]),
                province=rng.choice([*provinces, None]),
                posts=[
                    {
                        "organization": "X",
                        "organization_country": rng.choice(countries),
                        "role": "member",
                        "start_date": "2022-01-01",
                        "end_date": rng.choice([None, "2024-06-30"]),
                    }
                ],
            )
        )
    return {EVENTS: events, PARTNERS: partners, TALENT: talent}


async def snapshot(service) -> dict:
    result = {}
    async with service.client() as client:
        for year in (None, 2023, 2024, 2025):
            body = (await client.get("/v1/metrics", params={"year": year} if year else {})).json()
            for obj in body["regions"]:
                obj.pop("as_of")
            result[year] = body["regions"]
        result["bodies"] = (await client.get("/v1/bodies", params={"year": 2024})).json()["items"]
        result["targets"] = [{k: v for k, v in t.items()} for t in (await client.get("/v1/targets")).json()["targets"]]
    return result


async def test_rebuild_swaps_in_identical_figures_while_the_api_answers(service):
    rng = random.Random(11)
    batches = history(rng)
    total = sum(len(v) for v in batches.values())
    base = service.seen()
    for topic, messages in batches.items():
        await service.producer.send(topic, *messages)
    await service.settle(base + total, timeout=60)
    before = await snapshot(service)
    assert before[None][0]["events"]["count"] > 0

    answers: list[int] = []
    counts: set[int] = set()
    stop = asyncio.Event()

    async def keep_reading() -> None:
        async with service.client() as client:
            while not stop.is_set():
                response = await client.get("/v1/metrics/regions/all")
                answers.append(response.status_code)
                counts.add(response.json()["events"]["count"])
                await asyncio.sleep(0.01)

    reader = asyncio.create_task(keep_reading())
    engine = create_engine(service.settings.database_url)
    announced: set[str] = set()
    listener = ChangeListener(engine, announced.update, lambda: None)  # as every reporting process listens
    listener.start()
    try:
        await listener.wait_listening()
        report = await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            max_records=500,
        )
        await wait_until(lambda: _true(announced >= set(catalogue_codes())), 10)
    finally:
        stop.set()
        await reader
        await listener.stop()
        await engine.dispose()
    assert report.generation == 2 and report.messages == total
    assert answers and set(answers) == {200}
    assert counts == {before[None][0]["events"]["count"]}  # never a partial figure
    assert await snapshot(service) == before
    engine = create_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:  # the previous generation is gone from every table
            for table in [t for t in metadata.sorted_tables if "gen" in t.c]:
                left = await connection.scalar(select(func.count()).select_from(table).where(table.c.gen == 1))
                assert left == 0, table.name
            kept = select(func.count()).select_from(event_facts).where(event_facts.c.gen == 2)
            assert await connection.scalar(kept)
    finally:
        await engine.dispose()


async def test_messages_arriving_during_a_rebuild_are_kept(service):
    rng = random.Random(12)
    engine = create_engine(service.settings.database_url)
    base = service.seen()
    more = [event_message(event_data(host_province="540000", start_date="2025-07-01")) for _ in range(300)]

    async def trickle() -> None:
        for i in range(0, len(more), 10):
            await service.producer.send(EVENTS, *more[i : i + 10])
            await asyncio.sleep(rng.uniform(0.0, 0.02))

    writer = asyncio.create_task(trickle())
    try:
        await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            max_records=200,
        )
        await writer
        await service.settle(base + len(more), timeout=60)
        after_live = await snapshot(service)
        await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
        )
        assert await snapshot(service) == after_live
    finally:
        await engine.dispose()


async def test_a_rebuild_in_two_processes_gives_the_same_figures_and_keeps_arrivals(service, monkeypatch):
    rng = random.Random(13)
    batches = history(rng, n_events=300)
    base = service.seen()
    for topic, messages in batches.items():
        await service.producer.send(topic, *messages)
    total = sum(len(v) for v in batches.values())
    await service.settle(base + total, timeout=60)
    more = [event_message(event_data(host_province="650000", start_date="2024-03-01")) for _ in range(200)]

    async def trickle() -> None:
        for i in range(0, len(more), 10):
            await service.producer.send(EVENTS, *more[i : i + 10])
            await asyncio.sleep(rng.uniform(0.0, 0.02))

    engine = create_engine(service.settings.database_url)
    try:
        writer = asyncio.create_task(trickle())
        said: list[str] = []
        report = await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            max_records=300,
            workers=2,
            progress=said.append,
        )
        await writer
        await service.settle(base + total + len(more), timeout=60)
        live = await snapshot(service)
        monkeypatch.setattr(rebuild_module, "PROGRESS_SECONDS", 0.0)  # a line after every fetch
        one_process = await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            max_records=300,
            progress=said.append,
        )
    finally:
        await engine.dispose()
    assert base + total <= report.messages <= base + total + len(more)  # each counted once, across processes
    assert report.applied > 0 and report.invalid == 0
    assert one_process.messages == base + total + len(more)
    assert said[0].startswith("rebuild: replaying ") and said[0].endswith(" messages in 2 processes")
    assert f"rebuild: {one_process.messages:,} of {one_process.messages:,} messages replayed" in " ".join(said)
    assert await snapshot(service) == live  # the one-process rebuild reads exactly what the two-process one left


@pytest.mark.parametrize("workers", [1, 2])
async def test_poison_messages_are_skipped_and_named_and_the_figures_are_the_live_ones(service, workers):
    """An agreement whose status does not fit its column (17 characters) and a message that is not
    JSON: the live consumer dead-letters both; a rebuild — in one process or two — completes with the
    live figures and names them."""
    org = str(uuid.uuid4())
    poison = agreement_message(str(uuid.uuid4()), [org], status="s" * 17)
    base = service.seen()
    await service.producer.send(
        PARTNERS, organization_message(org, "SE"), poison, agreement_message(str(uuid.uuid4()), [org])
    )
    await service.producer.send(EVENTS, b"{not json", key="garbage")
    await service.producer.send(EVENTS, *[event_message(event_data(host_province="110000")) for _ in range(20)])
    await service.settle(base + 24, timeout=60)
    assert service.app.state.runtime.consumers[0].state.dead_lettered >= 2
    before = await snapshot(service)
    engine = create_engine(service.settings.database_url)
    try:
        report = await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            workers=workers,
        )
    finally:
        await engine.dispose()
    assert await snapshot(service) == before
    named = {(s.message_id, s.topic, s.reason) for s in report.skipped}
    assert (poison.id, service.settings.topic(PARTNERS), "invalid-data") in named
    assert (None, service.settings.topic(EVENTS), "invalid-envelope") in named  # not JSON: no id to name
    assert report.invalid == len(report.skipped) >= 2 and report.apply_failed == 0


async def test_a_message_whose_apply_fails_on_its_own_is_skipped_and_named(service, monkeypatch):
    """A message that passes decoding but whose apply fails in the database, alone, every time (here a
    division by zero in its transaction): the rebuild applies everything else of its chunk, skips it and
    names it as apply-failed."""
    poison = event_message(event_data(host_province="540000", start_date="2011-05-01"))
    others = [event_message(event_data(host_province="540000", start_date="2012-05-01")) for _ in range(40)]
    base = service.seen()
    await service.producer.send(EVENTS, *others[:20], poison, *others[20:])
    await service.settle(base + 41, timeout=60)
    assert (await service.region("cn:540000", 2011))["events"]["count"] == 1
    before = await snapshot(service)
    tibet_2012 = await service.region("cn:540000", 2012)
    real_apply = rebuild_module.apply_changes

    async def apply_failing_on_poison(store, gen, changes):
        if any(change.id == poison.subject for change in changes):
            await store.session.execute(text("SELECT 1 / 0"))
        return await real_apply(store, gen, changes)

    monkeypatch.setattr(rebuild_module, "apply_changes", apply_failing_on_poison)
    engine = create_engine(service.settings.database_url)
    try:
        report = await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
        )
    finally:
        await engine.dispose()
    skipped = [s for s in report.skipped if s.reason == "apply-failed"]
    assert [s.message_id for s in skipped] == [poison.id] and report.apply_failed == 1
    assert isinstance(skipped[0], Skipped) and skipped[0].topic == service.settings.topic(EVENTS)
    assert (await service.region("cn:540000", 2011))["events"]["count"] == 0
    tibet_2012.pop("as_of")
    assert {k: v for k, v in (await service.region("cn:540000", 2012)).items() if k != "as_of"} == tibet_2012
    after = await snapshot(service)
    assert {year: after[year] for year in (2023, 2024, 2025)} == {year: before[year] for year in (2023, 2024, 2025)}
    monkeypatch.undo()  # the message applies again: a rebuild gives back the live figures
    engine = create_engine(service.settings.database_url)
    try:
        await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
        )
    finally:
        await engine.dispose()
    assert await snapshot(service) == before


async def test_a_transient_failure_fails_the_rebuild_and_keeps_the_live_figures(service, monkeypatch):
    """The rebuild's database connection is killed while it applies (a restart, a failover): that says
    nothing about the message, so nothing is skipped — the rebuild fails and the live figures stay."""
    victim = event_message(event_data(host_province="620000"))
    base = service.seen()
    await service.producer.send(EVENTS, victim)
    await service.settle(base + 1, timeout=60)
    before = await snapshot(service)
    real_apply = rebuild_module.apply_changes

    async def apply_losing_the_connection(store, gen, changes):
        if any(change.id == victim.subject for change in changes):
            await store.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return await real_apply(store, gen, changes)

    monkeypatch.setattr(rebuild_module, "apply_changes", apply_losing_the_connection)
    engine = create_engine(service.settings.database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            current = await session.scalar(select(generation.c.current))
        with pytest.raises(Exception) as failed:
            await rebuild(
                sessions,
                bootstrap_servers=service.settings.kafka_bootstrap_servers,
                topics=service.settings.source_topics(),
            )
        assert "terminat" in str(failed.value).lower() or "connection" in str(failed.value).lower()
        async with sessions() as session:
            assert await session.scalar(select(generation.c.current)) == current
    finally:
        await engine.dispose()
    assert await snapshot(service) == before


async def test_a_failed_replaying_process_fails_the_rebuild_and_keeps_the_live_figures(
    service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The second worker dies at its start; the first is killed or finishes; nothing is swapped in, and
    the next rebuild clears the unfinished generation's rows."""
    await service.producer.send(EVENTS, *[event_message(event_data(host_province="310000")) for _ in range(60)])
    await service.settle(service.seen() + 60, timeout=60)
    before = await snapshot(service)
    started = tmp_path / "started"
    python = tmp_path / "python"
    # mkdir is atomic: of the two workers starting at once, exactly one goes on
    python.write_text(f'#!/bin/sh\nmkdir {started} 2>/dev/null || exit 3\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    engine = create_engine(service.settings.database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            current = await session.scalar(select(generation.c.current))
        with monkeypatch.context() as patched:
            patched.setattr(sys, "executable", str(python))
            with pytest.raises(RebuildWorkerFailed, match="status 3"):
                await rebuild(
                    sessions,
                    bootstrap_servers=service.settings.kafka_bootstrap_servers,
                    topics=service.settings.source_topics(),
                    workers=2,
                )
        async with sessions() as session:
            assert await session.scalar(select(generation.c.current)) == current
        assert not _rebuild_workers_running()  # the one that started was killed or had finished
        assert await snapshot(service) == before
        report = await rebuild(
            sessions,
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
        )
        async with engine.connect() as connection:
            for table in [t for t in metadata.sorted_tables if "gen" in t.c]:
                left = await connection.scalar(
                    select(func.count()).select_from(table).where(table.c.gen != report.generation)
                )
                assert left == 0, table.name
    finally:
        await engine.dispose()
    assert await snapshot(service) == before


async def test_a_rebuild_worker_exits_when_its_parent_goes(service):
    """A worker whose stdin closes (its parent was killed) stops at once instead of replaying on."""
    from reporting.rebuild.worker import EXIT_PARENT_GONE

    job = {
        "database_url": service.settings.database_url,
        "bootstrap_servers": service.settings.kafka_bootstrap_servers,
        "generation": 99,
        "max_records": 100,
        "partitions": [[service.settings.source_topics()[1], 0, 10**12]],  # an end never reached
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reporting.rebuild.worker", stdin=asyncio.subprocess.PIPE
    )
    try:
        assert worker.stdin is not None
        worker.stdin.write(json.dumps(job).encode() + b"\n")
        await worker.stdin.drain()
        await asyncio.sleep(5)  # started and replaying
        assert worker.returncode is None
        worker.stdin.close()
        assert await asyncio.wait_for(worker.wait(), 15) == EXIT_PARENT_GONE
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_only_one_rebuild_runs_at_a_time(service):
    from reporting.adapters.postgresql import REBUILD_LOCK
    from reporting.rebuild.replay import RebuildRunning
    from sqlalchemy import text

    engine = create_engine(service.settings.database_url)
    try:
        async with session_factory(engine)() as holder:
            await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REBUILD_LOCK})
            with pytest.raises(RebuildRunning):
                await rebuild(
                    session_factory(engine),
                    bootstrap_servers=service.settings.kafka_bootstrap_servers,
                    topics=service.settings.source_topics(),
                )
    finally:
        await engine.dispose()


def _rebuild_workers_running() -> list[str]:
    """This process's children that are rebuild workers (not another suite's, on the same machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or ended meanwhile
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == os.getpid() and b"reporting.rebuild.worker" in command:
            found.append(entry.name)
    return found


async def _true(value: bool) -> bool:
    return value
