"""A producer that kept its metadata across an embedded broker's restart writes to a topic the new broker does
not list; creating that topic afterwards must not leave those writes in the new log.

Seen for real (tests/chaos/test_crash_safety.py, broker restart, about one run in three): the worker's queued
enriched batches reached the restarted broker before its reset check ran; Tansu stored them under the unlisted
topic, the check's CreateTopics started the log at offset 0 over them, later produces to those offsets failed
(UnknownError), and the sink read stale records where acknowledged ones were: those signals were never stored.
``create_topics(wipe_unlisted_writes=True)`` deletes and creates such a topic once more.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.kafka import create_topics
from touchpoint.core.settings import Settings

TOPIC = "signals.enriched"


async def new_log_after_stale_writes(settings: Settings, wipe: bool) -> tuple[list[bytes], list[bytes]]:
    """(acknowledged after the topic was created, read back from its start) across one broker restart."""
    broker = EmbeddedBroker()
    broker.start()
    live = settings.with_overrides(kafka_bootstrap=broker.bootstrap, topic_partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        await create_topics(live, [TOPIC])
        await producer.start()
        await (await producer.send(TOPIC, b"before", partition=0))  # the producer now knows the topic's leader
        broker.stop()
        broker.start()  # same port, memory storage: nothing listed
        stale = await asyncio.gather(*[await producer.send(TOPIC, b"stale-%d" % i, partition=0) for i in range(10)])
        assert [r.offset for r in stale] == list(range(10)), "Tansu stored writes to a topic it does not list"
        await create_topics(live, [TOPIC], wipe_unlisted_writes=[TOPIC] if wipe else ())
        acknowledged = []
        for i in range(30):
            value = b"new-%d" % i
            try:
                await (await producer.send(TOPIC, value, partition=0))
                acknowledged.append(value)
            except Exception:  # Tansu's AlreadyExists over a stale batch (UnknownError): not acknowledged
                pass
        tp = TopicPartition(TOPIC, 0)
        await consumer.start()
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        read: list[bytes] = []
        for _ in range(6):
            batches = await consumer.getmany(tp, timeout_ms=500)
            read += [m.value for messages in batches.values() for m in messages]
        return acknowledged, read
    finally:
        await producer.stop()
        await consumer.stop()
        broker.stop()


async def test_writes_to_an_unlisted_topic_are_wiped_when_it_is_created(settings: Settings) -> None:
    acknowledged, read = await new_log_after_stale_writes(settings, wipe=True)
    assert len(acknowledged) == 30
    assert read == acknowledged  # every acknowledged record, once, in order; nothing stale


async def test_negative_control_without_the_wipe_acknowledged_records_are_not_read(settings: Settings) -> None:
    """The plain create shows the Tansu behaviour the wipe is for; when Tansu fixes it, this fails: drop the wipe."""
    acknowledged, read = await new_log_after_stale_writes(settings, wipe=False)
    stale_read = [v for v in read if v.startswith(b"stale-")]
    unread = [v for v in acknowledged if v not in read]
    if not (stale_read and unread):
        pytest.fail(f"the new log was clean without the wipe (stale read {len(stale_read)}, unread {len(unread)})")
