"""How a parallel rebuild shares the partitions between its processes."""

from __future__ import annotations

from aiokafka import TopicPartition
from reporting.rebuild.replay import split_partitions


def tp(topic: str, n: int) -> TopicPartition:
    return TopicPartition(topic, n)


def test_whole_partitions_are_shared_evenly_by_messages() -> None:
    sizes = {tp("e", 0): 500, tp("e", 1): 300, tp("e", 2): 250, tp("p", 0): 40, tp("t", 0): 10}
    shares = split_partitions(sizes, 2)
    assert sorted(sum(sizes[t] for t in share) for share in shares) == [550, 550]
    assert sorted(t for share in shares for t in share) == sorted(sizes)  # each partition once


def test_empty_partitions_and_empty_shares_are_left_out() -> None:
    sizes = {tp("e", 0): 100, tp("e", 1): 0, tp("p", 0): 0}
    assert split_partitions(sizes, 4) == [[tp("e", 0)]]
    assert split_partitions({tp("e", 0): 0}, 2) == []


def test_one_worker_takes_everything_with_messages() -> None:
    sizes = {tp("e", 1): 5, tp("e", 0): 7, tp("e", 2): 0}
    assert split_partitions(sizes, 1) == [[tp("e", 0), tp("e", 1)]]


def test_a_whole_topic_stays_in_one_share() -> None:
    """The partners topic's organizations and agreements refer to one another: one process replays it."""
    sizes = {tp("p", 0): 30, tp("p", 1): 30, tp("p", 2): 30, tp("e", 0): 100, tp("e", 1): 100}
    shares = split_partitions(sizes, 3, whole_topics={"p"})
    partners_shares = [share for share in shares if any(t.topic == "p" for t in share)]
    assert len(partners_shares) == 1 and [t for t in partners_shares[0] if t.topic == "p"] == [
        tp("p", 0),
        tp("p", 1),
        tp("p", 2),
    ]
    assert sorted(t for share in shares for t in share) == sorted(sizes)
