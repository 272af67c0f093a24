"""The operators' view of a consumer's dead-letter topics: `<svc> dlq list` and `<svc> dlq replay`.

`list` prints each dead-lettered message's position, key, CloudEvent id and type, and the reason and
error the consumer recorded (its type and location only), never the message's data. `replay` sends
chosen messages back, unchanged, onto the topic they came from, once their cause is fixed: the consumer
applies a replayed message as any other, its inbox absorbs a message replayed twice, and the version
gate ignores one older than what it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from common.kafka.clients import new_producer

_COLUMNS = ("position", "key", "id", "type", "reason", "error", "from")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str  # the dead-letter topic
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def ref(self) -> str:
        """Its position, `<dlq topic>:<partition>:<offset>` (topic names cannot contain a colon)."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def original_topic(self) -> str:
        return self.header("dlq.original.topic") or self.topic.removesuffix(".dlq")

    @property
    def event_id(self) -> str | None:
        return self._envelope_field("id")

    @property
    def event_type(self) -> str | None:
        return self._envelope_field("type")

    def _envelope_field(self, name: str) -> str | None:
        try:
            value = json.loads(self.value or b"").get(name)
        except (ValueError, AttributeError):  # not JSON, or not an object: an invalid envelope
            return None
        return value if isinstance(value, str) else None


async def _partitions(bootstrap_servers: str, topics: Sequence[str]) -> list[TopicPartition]:
    """The partitions of those of `topics` that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=20_000)
    await asyncio.wait_for(admin.start(), 30)
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0  # else the topic does not exist: nothing was ever dead-lettered there
        for p in sorted(t["partitions"], key=lambda p: int(p["partition"]))
    ]


async def read_dead_letters(bootstrap_servers: str, topics: Sequence[str]) -> list[DeadLetter]:
    """Every message now in the dead-letter topics of `topics` (the consumer's source topics), oldest
    first per partition. Reads without a consumer group: it commits nothing and disturbs no one."""
    partitions = await _partitions(bootstrap_servers, [f"{t}.dlq" for t in topics])
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        request_timeout_ms=20_000,
    )
    await asyncio.wait_for(consumer.start(), 30)
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = {tp: o for tp, o in (await consumer.end_offsets(partitions)).items() if o > 0}
        letters: list[DeadLetter] = []
        while end:
            batches = await consumer.getmany(*end, timeout_ms=1000)
            for tp, records in batches.items():
                letters.extend(
                    DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in records
                    if r.offset < end.get(tp, 0)
                )
            for tp in list(end):
                if await consumer.position(tp) >= end[tp]:
                    del end[tp]
        return letters
    finally:
        await consumer.stop()


def choose(letters: Sequence[DeadLetter], selectors: Sequence[str]) -> list[DeadLetter]:
    """The messages named by position (`ref`) or CloudEvent id, each once, in the order of `letters`.
    A selector that names nothing raises LookupError: an operator's typo must not half-replay."""
    chosen: dict[str, DeadLetter] = {}
    for selector in dict.fromkeys(selectors):
        matches = [d for d in letters if selector in (d.ref, d.event_id)]
        if not matches:
            raise LookupError(selector)
        # A message dead-lettered twice (re-read after a crash) is the same message: replay it once.
        chosen.setdefault(matches[0].event_id or matches[0].ref, matches[0])
    order = {d.ref: index for index, d in enumerate(letters)}
    return sorted(chosen.values(), key=lambda d: order[d.ref])


async def replay(bootstrap_servers: str, letters: Sequence[DeadLetter]) -> None:
    """Send each message back onto its original topic with its key and headers, without the `dlq.*`
    ones (a message that fails again gets fresh ones)."""
    producer = new_producer(bootstrap_servers, client_id="dead-letter-replay")
    await asyncio.wait_for(producer.start(), 30)
    try:
        for letter in letters:
            headers = [(k, v) for k, v in letter.headers if not k.startswith("dlq.")]
            await producer.send_and_wait(letter.original_topic, letter.value, key=letter.key, headers=headers)
    finally:
        await producer.stop()


def add_dead_letter_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`dlq list` and `dlq replay SELECTOR…` on a service's command line."""
    dlq = subcommands.add_parser("dlq", help="list the consumer's dead-lettered messages, or replay chosen ones")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    actions.add_parser("list", help="position, key, CloudEvent id and type, reason and error of each message")
    again = actions.add_parser("replay", help="send chosen messages back onto their original topic")
    again.add_argument(
        "selectors", nargs="+", metavar="SELECTOR", help="a CloudEvent id, or a position as `list` prints it"
    )


async def dead_letter_command(
    args: argparse.Namespace, *, bootstrap_servers: str, topics: Sequence[str], out: TextIO
) -> int:
    """Run `dlq list|replay` for a consumer of `topics`; the exit status: 0, or 2 for an unknown selector."""
    letters = await read_dead_letters(bootstrap_servers, topics)
    if args.dlq_command == "list":
        out.write("\t".join(_COLUMNS) + "\n")
        for d in letters:
            source = ":".join(str(d.header(f"dlq.original.{name}") or "-") for name in ("topic", "partition", "offset"))
            key = d.key.decode("utf-8", "replace") if d.key is not None else "-"
            fields = (d.ref, key, d.event_id, d.event_type, d.header("dlq.reason"), d.header("dlq.error"), source)
            out.write("\t".join(f or "-" for f in fields) + "\n")
        return 0
    try:
        chosen = choose(letters, args.selectors)
    except LookupError as missing:
        out.write(f"no dead-lettered message is {missing.args[0]}: nothing replayed\n")
        return 2
    await replay(bootstrap_servers, chosen)
    for d in chosen:
        out.write(f"replayed {d.ref} ({d.event_id or 'no id'}) to {d.original_topic}\n")
    return 0
