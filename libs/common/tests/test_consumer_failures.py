"""Which failures the consumer retries and which messages it dead-letters, against a real broker and a
real database: only a message that keeps failing on its own may reach the DLQ, and nothing that
describes a failure may quote the data that caused it."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, KafkaConnectionError
from common.db import session_factory
from common.kafka.consumer import ConsumerRunner, Decoded, Delivery, InvalidMessage, decode_envelope
from common.testing.messages import cloud_event
from common.testing.plugin import read_topic, wait_until
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from .conftest import counters, inbox
from .test_consumer import CountingHandler, _eq, counter, message, produce

Failure = Callable[[object], Awaitable[None]]


def raising(exc: Exception) -> Failure:
    async def fail(_session: object) -> None:
        raise exc

    return fail


def database_error(sqlstate: str) -> Failure:
    """The real database raising an error of this SQLSTATE inside the batch's transaction."""

    async def fail(session: object) -> None:
        await session.execute(  # type: ignore[attr-defined]
            text(f"DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{sqlstate}'; END $$")
        )

    return fail


class ConcurrentChange(RuntimeError):
    """Stands for reporting's ConcurrentApply: another consumer changed the batch's rows meanwhile."""


TRANSIENT: dict[str, Failure] = {
    "concurrent-apply": raising(ConcurrentChange("rows changed by another consumer")),
    "deadlock": database_error("40P01"),
    "serialization": database_error("40001"),
    "commit-failed": raising(CommitFailedError()),
    "consumer-stopped": raising(ConsumerStoppedError()),
    "broker-unreachable": raising(KafkaConnectionError()),
}
DATA_ERROR = database_error("22P02")  # invalid_text_representation: what a bad value causes


class FlakyHandler(CountingHandler):
    """Fails its next apply calls with the given failures, in order, then applies normally."""

    def __init__(self, failures: Sequence[Failure]) -> None:
        self.failures = list(failures)

    async def apply(self, session, deliveries: Sequence[Delivery]) -> None:
        if self.failures:
            await self.failures.pop(0)(session)
        await super().apply(session, deliveries)


def flaky_runner(engine, bootstrap: str, topic: str, group: str, handler: CountingHandler) -> ConsumerRunner:
    return ConsumerRunner(
        service="test",
        topics=[topic],
        group_id=group,
        sessions=session_factory(engine),
        inbox=inbox,
        handler=handler,
        bootstrap_servers=bootstrap,
    )


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
@pytest.mark.parametrize("failure", sorted(TRANSIENT))
async def test_a_transient_failure_is_retried_and_never_dead_letters(engine, kafka_bootstrap, topic, run_id, failure):
    await produce(kafka_bootstrap, topic, [message(n).to_bytes() for n in (1, 2, 3)])
    handler = FlakyHandler([TRANSIENT[failure]] * 4)  # more often than isolate_after
    consumer = flaky_runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}", handler)
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 6), timeout=60)
    finally:
        await consumer.stop()
    assert not handler.failures
    assert consumer.state.dead_lettered == 0
    assert consumer.state.poison_failures == 0
    assert consumer.state.transient_failures >= 4
    assert await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=0, timeout=1) == []


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_concurrent_apply_while_isolating_is_retried_not_dead_lettered(engine, kafka_bootstrap, topic, run_id):
    await produce(kafka_bootstrap, topic, [message(n).to_bytes() for n in (1, 2, 3)])
    # Three data errors put the consumer in isolation mode; then the first message, applied alone,
    # meets another consumer's change once.
    handler = FlakyHandler([DATA_ERROR] * 3 + [TRANSIENT["concurrent-apply"]])
    consumer = flaky_runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}", handler)
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 6), timeout=60)
    finally:
        await consumer.stop()
    assert not handler.failures
    assert consumer.state.dead_lettered == 0
    assert consumer.state.poison_failures == 3
    assert await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=0, timeout=1) == []


def _dead_letter_failures(topic: str) -> float:
    value = REGISTRY.get_sample_value("consumer_dead_letter_failures_total", {"service": "test", "topic": topic})
    return value or 0.0


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_failing_dead_letter_send_is_counted_retried_and_loses_nothing(
    engine, kafka_bootstrap, topic_prefix, run_id
):
    topic = f"{topic_prefix}dlq-refuses"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name=topic, num_partitions=1, replication_factor=1),
                # The DLQ refuses what the consumer will send it until its limit is raised below.
                NewTopic(f"{topic}.dlq", 1, 1, topic_configs={"max.message.bytes": "1000"}),
            ]
        )
        invalid = message("x" * 2000)  # not an integer amount: dead-lettered, and too large for the DLQ
        await produce(kafka_bootstrap, topic, [message(1).to_bytes(), invalid.to_bytes(), message(2).to_bytes()])
        group = f"g-{run_id}-{topic}"
        consumer = flaky_runner(engine, kafka_bootstrap, topic, group, CountingHandler())
        consumer.start()
        try:
            await wait_until(lambda: _true(_dead_letter_failures(topic) >= 2), timeout=60)
            assert await counter(engine) in (None, 1)  # nothing after the refused message was applied
            committed = await admin.list_consumer_group_offsets(group)
            assert all(o.offset <= 1 for o in committed.values())  # nor committed past it
            assert consumer.state.poison_failures == 0  # a DLQ outage is not the message's fault
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, f"{topic}.dlq", configs={"max.message.bytes": "1048588"})]
            )
            await wait_until(lambda: _eq(counter(engine), 3), timeout=60)
        finally:
            await consumer.stop()
    finally:
        await admin.close()
    dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert [json.loads(r.value)["id"] for r in dead] == [invalid.id]
    assert consumer.state.dead_lettered == 1


async def _true(value: bool) -> bool:
    return value


# --- personal data ------------------------------------------------------------------------------
NAME = "Wilhelmina Quorndon-Pryce"
EMAIL = "w.quorndon@example.org"
PERSONAL = (NAME, EMAIL, "Quorndon", "w.quorndon")


class Counted(BaseModel):
    key: str = Field(max_length=64)
    amount: int


class ValidatingHandler(CountingHandler):
    """Validates `data` with a model (its errors quote the input) and lets the database cast the key:
    a key that is not a number fails there, with a message that quotes it too."""

    def decode(self, topic: str, raw: bytes) -> Decoded:
        envelope = decode_envelope(raw)
        try:
            data = Counted.model_validate(envelope.data)
        except ValidationError as exc:
            raise InvalidMessage("data does not match the counted event") from exc
        return Decoded(envelope.id, (data.key, data.amount))

    async def apply(self, session, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            key, _amount = d.decoded
            if "@" in key:
                await session.execute(text("SELECT CAST(CAST(:key AS text) AS integer)"), {"key": key})
        await super().apply(session, deliveries)


def _personal_in(text: str) -> list[str]:
    return [p for p in PERSONAL if p.lower() in text.lower()]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_no_personal_data_reaches_a_log_line_or_a_dead_letter_header(
    engine, kafka_bootstrap, topic, run_id, caplog
):
    caplog.set_level(logging.INFO)  # services log at INFO (third-party debug output is off in production)
    bad_envelope = json.loads(message(1).to_bytes())
    bad_envelope["id"] = f"{NAME} <{EMAIL}> " * 3  # longer than an id may be
    bad_envelope["time"] = f"{NAME} {EMAIL}"
    bad_data = cloud_event(source="/test", type="t", subject="s", data={"key": f"{NAME} {EMAIL}", "amount": NAME})
    fails_in_database = cloud_event(source="/test", type="t", subject="s", data={"key": EMAIL, "amount": 1})
    await produce(
        kafka_bootstrap,
        topic,
        [json.dumps(bad_envelope).encode(), bad_data.to_bytes(), fails_in_database.to_bytes(), message(5).to_bytes()],
    )
    consumer = flaky_runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}", ValidatingHandler())
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 5), timeout=60)
    finally:
        await consumer.stop()
    dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=3)
    assert sorted(dict(r.headers)["dlq.reason"].decode() for r in dead) == [
        "apply-failed",
        "invalid-data",
        "invalid-envelope",
    ]
    for record in dead:
        for name, value in record.headers:
            assert not _personal_in(value.decode()), (name, value)
    errors = {dict(r.headers)["dlq.reason"]: dict(r.headers)["dlq.error"].decode() for r in dead}
    assert "id" in errors[b"invalid-envelope"] and "string_too_long" in errors[b"invalid-envelope"]
    assert "amount int_parsing" in errors[b"invalid-data"]
    assert "SQLSTATE 22P02" in errors[b"apply-failed"]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged  # the failures were logged ...
    for record in caplog.records:  # ... and nothing logged quotes the person
        assert not _personal_in(record.getMessage() + repr(vars(record))), record.getMessage()


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"], indirect=True)
async def test_a_logged_database_error_does_not_show_its_parameters(engine, caplog):
    caplog.set_level(logging.INFO)
    sqlite = engine.dialect.name == "sqlite"
    with pytest.raises(DBAPIError) as caught:
        try:
            async with session_factory(engine)() as session, session.begin():
                # PostgreSQL: too long for the column; SQLite (which ignores lengths): no value.
                await session.execute(insert(counters).values(key=f"{NAME} {EMAIL} " * 3, value=None if sqlite else 1))
        except DBAPIError:
            logging.getLogger("test").exception("insert failed")  # with its traceback, as a 500 is logged
            raise
    assert "insert failed" in caplog.text and type(caught.value).__name__ in caplog.text
    assert not _personal_in(str(caught.value))
    assert not _personal_in(caplog.text)
