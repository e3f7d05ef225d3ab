"""Kafka client options from settings, shared by connectors, the worker and tools."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Awaitable, Collection, Iterable, Sequence

from aiokafka.partitioner import DefaultPartitioner

from touchpoint.core.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments: bootstrap servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options


def faust_broker_url(settings: Settings) -> str:
    return ",".join(f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(","))


async def read_topic_records(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record now in ``topic``, all partitions, from the beginning (for tools and tests).

    The end of a partition is the high watermark that each fetch response
    carries, not a ListOffsets answer: Tansu's ListOffsets(latest) answers the
    base offset of the last record batch + 1 (:func:`touchpoint.pipeline.lag.log_ends`).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        try:  # waits until the broker's metadata lists the topic
            partitions = await asyncio.wait_for(consumer._client._wait_on_metadata(topic), 10)
        except (asyncio.TimeoutError, KafkaError):
            return []  # nothing was ever produced to it
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            records += [message for messages in batch.values() for message in messages]
            behind = [tp for tp in tps if consumer.highwater(tp) is None or await consumer.position(tp) < consumer.highwater(tp)]
            if not behind:
                return records
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f}s (behind: {behind})")
    finally:
        await consumer.stop()


async def topic_message_count(settings: Settings, topic: str) -> int:
    """Messages currently in ``topic`` (read to the end; see :func:`read_topic_records`)."""
    return len(await read_topic_records(settings, topic))


async def create_topics(settings: Settings, topics: Sequence[str], wipe_unlisted_writes: Collection[str] = ()) -> None:
    """Create ``topics`` with ``topic_partitions`` partitions; those that exist already are left alone.

    ``wipe_unlisted_writes``: delete each of these topics that this call created and create it once more, for the embedded broker
    after it lost its state (:mod:`touchpoint.pipeline.broker_reset`). Tansu stores a produce to a topic its
    metadata does not list (a producer that kept its metadata across the restart sends its queued batches there),
    and CreateTopics then starts that log at offset 0 over the stored records: produces to those offsets fail
    (UnknownError) and a consumer reads the stale records where acknowledged ones should be, so those are never
    read. Once the topic is listed, deleting it removes everything stored under it
    (tests/integration/test_broker_restart_writes.py shows both). A Kafka broker refuses a produce to an unknown topic."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    if not topics:
        return
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        wanted = [NewTopic(t, settings.topic_partitions, 1) for t in topics]
        created = _created(await admin.create_topics(wanted))
        wiped = [name for name in created if name in wipe_unlisted_writes]
        if wiped:
            deleted = await admin.delete_topics(wiped)
            failed = [(name, code) for name, code in deleted.topic_error_codes if code != 0]
            if failed:
                raise KafkaError(f"the broker refused to delete topics it had just created: {failed}")
            _created(await admin.create_topics([t for t in wanted if t.name in wiped]))
    finally:
        await admin.close()


def _created(response: Any) -> list[str]:
    """The topics a CreateTopics response says were created; raises for a refusal other than 'exists already'."""
    from aiokafka.errors import KafkaError

    failed = [(name, code) for name, code, *_ in response.topic_errors if code not in (0, TOPIC_ALREADY_EXISTS)]
    if failed:
        raise KafkaError(f"the broker refused to create topics: {failed}")
    return [name for name, code, *_ in response.topic_errors if code == 0]


TOPIC_ALREADY_EXISTS = 36  # Kafka error code


async def track_topics(producer: Any, topics: Iterable[str]) -> None:
    """Make ``producer`` (an aiokafka producer) keep the metadata of every topic in ``topics``.

    Why: a producer's client starts by fetching every topic's metadata, but it *tracks* only the topics it had
    to look up. A send to a topic present at that first fetch tracks nothing; the first send to a topic created
    later tracks that one alone, and the next refresh asks for it alone and drops the others' partitions. A
    batch still waiting for one of them then finds no leader, and the client refreshes (for the wrong topics)
    until the batch expires with NotLeaderForPartitionError: an import whose last record was a dead letter
    could not deliver its last batch of signals. Track every topic before its first send; a topic already
    tracked costs a set lookup."""
    refreshes = [producer.client.add_topic(topic) for topic in topics]  # all added before the one refresh runs
    for refresh in refreshes:  # already done for a topic tracked before: the worker's deliver pays no wait
        await refresh


_PARTITIONER = DefaultPartitioner()  # the partitioner aiokafka's (and so Faust's) send uses


async def send_batched(producer: Any, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send ``items`` (key, value) to ``topic`` as record batches, one run per partition, and wait for every ack.

    Why: a send per record costs a future, a task wake-up and an accumulator lookup each: Faust's
    ``Topic.send`` about 39 µs of the event loop per record (py-spy), aiokafka's own ``send`` 19 µs
    of CPU against 14 µs here (500 records; 6 of the 14 are the partitioner's pure-Python murmur2).
    Records land where ``send`` would put them: aiokafka's partitioner (murmur2 of the key, as
    Java's client; a keyless record to a random partition), in order per partition. Raises the
    first failure once every batch has answered.
    """
    if not items:
        return
    await track_topics(producer, [topic])  # see track_topics
    partitions = sorted(await producer.partitions_for(topic))
    by_partition: dict[int, list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for key, value in items:
        by_partition[_PARTITIONER(key, partitions, partitions)].append((key, value))
    futures = []
    for partition, records in by_partition.items():
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    await all_answered(futures)


async def all_answered(futures: Sequence[Awaitable[Any]]) -> None:
    """Wait for every one, then raise the first failure if any (so none is left running unseen)."""
    for outcome in await asyncio.gather(*futures, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
