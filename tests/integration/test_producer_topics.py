"""A producer that sends to a topic created after it started keeps the metadata of the topics it sent to before.

aiokafka's client tracks only the topics it had to look up (core/kafka.py ``track_topics`` says how a batch
got stranded). Seen for real: an import whose last line was invalid sent its dead letter to a dead-letter topic
created after the producer started; the signals' last batch, still waiting, expired with
NotLeaderForPartitionError (tests/chaos/test_read_while_running.py, about one run in two).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.kafka import create_topics, read_topic_records, send_batched, track_topics
from touchpoint.core.settings import Settings


async def send_then_send_to_a_new_topic(settings: Settings, track: bool) -> list[object]:
    """Batches for ``first`` wait (linger) while the first send to ``later``, created after start, is made."""
    first, later = f"first-{uuid.uuid4().hex[:8]}", f"later-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, [first])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False,
                                linger_ms=300, request_timeout_ms=3000)  # fmt: skip
    await producer.start()  # its first metadata: every topic, ``later`` not among them
    try:
        await create_topics(settings, [later])
        if track:
            await track_topics(producer, [first, later])
        waiting = [await producer.send(first, b"signal", key=str(i).encode()) for i in range(12)]
        letter = await producer.send(later, b"letter")
        return await asyncio.gather(*waiting, letter, return_exceptions=True)
    finally:
        await producer.stop()


async def test_tracked_topics_keep_their_partitions_when_a_new_topic_is_sent_to(
    settings: Settings, broker: EmbeddedBroker
) -> None:
    live = settings.with_overrides(kafka_bootstrap=broker.bootstrap)
    outcomes = await send_then_send_to_a_new_topic(live, track=True)
    assert not [o for o in outcomes if isinstance(o, BaseException)]


async def test_negative_control_untracked_the_waiting_batches_expire(settings: Settings, broker: EmbeddedBroker) -> None:
    """Without ``track_topics`` the same sends fail: the fix, not luck, makes the test above pass."""
    live = settings.with_overrides(kafka_bootstrap=broker.bootstrap)
    outcomes = await send_then_send_to_a_new_topic(live, track=False)
    failed = [o for o in outcomes if isinstance(o, KafkaError)]
    if not failed:
        pytest.fail("aiokafka kept the first topic's metadata: has it been fixed? then track_topics can go")
    assert {type(o).__name__ for o in failed} == {"NotLeaderForPartitionError"}


async def _placed(settings: Settings, topic: str) -> dict[bytes, list[tuple[int, bytes]]]:
    """Every record of ``topic``: key -> [(partition, value)] in log order."""
    found: dict[bytes, list[tuple[int, bytes]]] = {}
    for record in sorted(await read_topic_records(settings, topic), key=lambda r: (r.partition, r.offset)):
        found.setdefault(record.key, []).append((record.partition, record.value))
    return found


async def sent_both_ways(settings: Settings, items: list[tuple[bytes, bytes]]) -> tuple[dict, dict]:
    """``items`` sent a record at a time (``send``) to one new 4-partition topic and with ``send_batched``
    to another: where each landed, both ways."""
    by_send, batched = f"send-{uuid.uuid4().hex[:8]}", f"batched-{uuid.uuid4().hex[:8]}"
    await create_topics(settings.with_overrides(topic_partitions=4), [by_send, batched])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False, acks=-1)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(by_send, value, key=key) for key, value in items])
        await send_batched(producer, batched, items)
    finally:
        await producer.stop()
    return await _placed(settings, by_send), await _placed(settings, batched)


async def test_send_batched_puts_each_record_where_send_would_in_order_and_waits_for_every_ack(
    live_settings: Settings,
) -> None:
    """The worker's deliver sends record batches (core/kafka.py ``send_batched``), not a send per record;
    a key must still land on the partition aiokafka's (and Faust's) ``send`` picks, or a signal's records
    would change partition with the path that wrote them. Values bigger than one batch force several
    batches per partition; per key, records stay in send order."""
    items = [(f"signal-{i % 60}".encode(), f"{i}:".encode() + b"x" * 900) for i in range(240)]
    expected, got = await sent_both_ways(live_settings, items)
    assert len({p for placed in got.values() for p, _ in placed}) == 4  # the keys spread over every partition
    assert got == expected  # same partition per key, same values in the same order, nothing lost or doubled


async def test_negative_control_a_partitioner_that_differs_from_sends_is_caught(
    live_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison above fails when batches are placed by another rule (here: partitions in reverse)."""
    import touchpoint.core.kafka as kafka

    original = kafka._PARTITIONER
    monkeypatch.setattr(kafka, "_PARTITIONER", lambda key, every, available: original(key, every[::-1], available))
    expected, got = await sent_both_ways(live_settings, [(f"signal-{i}".encode(), b"v") for i in range(40)])
    assert got != expected
