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
from touchpoint.core.kafka import create_topics, track_topics
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
