"""The operators' dead-letter command against a real broker: list what a consumer dead-lettered, with
its reasons and ids but none of its data, then replay chosen messages once the cause is fixed."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence

import pytest
from common.db import session_factory
from common.kafka.consumer import ConsumerRunner, Decoded, InvalidMessage
from common.kafka.dead_letters import add_dead_letter_commands, dead_letter_command, read_dead_letters
from common.testing.plugin import wait_until

from .conftest import inbox
from .test_consumer import CountingHandler, _eq, _true, counter, message, produce


class StrictHandler(CountingHandler):
    """A handler with a bug: it refuses amounts above 100, which are valid."""

    def decode(self, topic: str, raw: bytes) -> Decoded:
        decoded = super().decode(topic, raw)
        if decoded.value[1] > 100:
            raise InvalidMessage("data.amount above the limit")
        return decoded


async def run_command(argv: Sequence[str], bootstrap: str, topic: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="svc")
    add_dead_letter_commands(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    code = await dead_letter_command(parser.parse_args(argv), bootstrap_servers=bootstrap, topics=[topic], out=out)
    return code, out.getvalue()


def consumer_with(engine, bootstrap: str, topic: str, group: str, handler: CountingHandler) -> ConsumerRunner:
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
async def test_dead_letters_are_listed_and_replayed_once_the_cause_is_fixed(engine, kafka_bootstrap, topic, run_id):
    large = message(500)
    await produce(
        kafka_bootstrap, topic, [message(1).to_bytes(), large.to_bytes(), b"{not json", message(2).to_bytes()]
    )
    group = f"g-{run_id}-{topic}"
    strict = consumer_with(engine, kafka_bootstrap, topic, group, StrictHandler())
    strict.start()
    try:
        await wait_until(lambda: _true(strict.state.dead_lettered == 2))
        await wait_until(lambda: _eq(counter(engine), 3))
    finally:
        await strict.stop()

    code, listing = await run_command(["dlq", "list"], kafka_bootstrap, topic)
    assert code == 0
    lines = listing.splitlines()
    assert len(lines) == 3  # a header and the two messages
    (large_line,) = [line for line in lines if large.id in line]
    assert "exchange.test.counted" in large_line and "invalid-data" in large_line
    assert "InvalidMessage: data.amount above the limit" in large_line
    assert f"{topic}:" in large_line  # where it came from
    assert any("invalid-envelope" in line for line in lines)
    assert "500" not in listing and "not json" not in listing  # no payload is printed

    code, answer = await run_command(["dlq", "replay", "no-such-message"], kafka_bootstrap, topic)
    assert code == 2 and "no-such-message" in answer  # nothing replayed when one selector is unknown

    fixed = consumer_with(engine, kafka_bootstrap, topic, group, CountingHandler())
    fixed.start()
    try:
        code, answer = await run_command(["dlq", "replay", large.id, large.id], kafka_bootstrap, topic)
        assert code == 0 and answer.count(large.id) == 1  # chosen twice, replayed once
        await wait_until(lambda: _eq(counter(engine), 503))
        (letter,) = [d for d in await read_dead_letters(kafka_bootstrap, [topic]) if d.event_id == large.id]
        code, _ = await run_command(["dlq", "replay", letter.ref], kafka_bootstrap, topic)  # again, by position
        assert code == 0
        await wait_until(lambda: _true(fixed.state.duplicates >= 1))
    finally:
        await fixed.stop()
    assert await counter(engine) == 503  # the second replay changed nothing
    assert fixed.state.dead_lettered == 0
