"""A broker that lost its state: the worker notices, says so once, and goes on.

A Kafka cluster keeps its topics and the group's offsets through restarts; the
embedded broker (Tansu with memory storage, for trials) does not: after it
restarts, Touchpoint's topics are gone or new, and a worker would otherwise
read the new logs from its old positions (skipping what arrived before them)
and wait forever on a topic nobody recreates.

Policy, checked every second for rules 1 and 2 (:func:`check_cluster`: one
metadata request) and on every consumer-lag tick for all three
(:func:`check_for_reset`):

1. **A new cluster id**: the broker reports another id than when the worker
   first saw it. Kafka assigns the id when a cluster's storage is formatted,
   and the embedded broker takes a new one at every start
   (:class:`touchpoint.core.broker.EmbeddedBroker`), so a new id means the
   logs and the group's offsets are new. This holds however far the new
   logs have grown, which the offsets alone cannot tell.
2. **Unknown topics** (one of the worker's topics is missing on the broker):
   recreate them with ``topic_partitions`` partitions. On the embedded broker
   the enriched topic is created, deleted and created again
   (:func:`wiped_on_reset`): the worker's producer may have sent its queued
   batches to the restarted broker before anyone noticed, and Tansu stores
   those under a topic it does not list, then starts the created log over
   them (``create_topics(wipe_unlisted_writes=...)`` says how that loses
   acknowledged records). Checked every second, not only on the 5 s lag
   tick: until the worker's own topics exist again, aiokafka retries each
   pending offset commit to them every 100 ms and logs an error per
   partition each time (one restart here: 16 such lines in the 0.4 s before
   the tick noticed; 140 on a slower machine).
3. **Offsets beyond the log end** (a partition's committed offset is past the
   log's end) at two checks in a row, with the same committed offset: a topic
   deleted and created again on the same cluster. The end is read as
   :func:`touchpoint.pipeline.lag.log_ends` says (Tansu's ListOffsets answer
   alone trails the log by up to one batch, which once made a finished import
   look like a lost log); two checks keep one stale answer from rewinding a
   healthy group.
4. In each case: one error line naming what happened and this policy, the
   ``touchpoint_consumer_log_resets_total`` counter, and a rewind: the worker
   forgets its offsets of the old logs and reads every partition it owns from
   the start of its new log (:func:`rewind_after_reset`). Records processed
   twice are deduplicated by signal_id. A batch still in flight from before
   does not commit its old offsets: the log epoch moves on
   (:class:`touchpoint.pipeline.acks.HeldBatch`; a restarted broker numbers
   the group's generations anew, so they cannot tell).

Records produced before the restart and not yet processed are gone with the
old broker: nothing can recover them, which is why the embedded broker is
for trials and tests (README, "The embedded broker").
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import faust
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata

from touchpoint.core import metrics
from touchpoint.core.broker import is_embedded_cluster
from touchpoint.core.kafka import create_topics
from touchpoint.core.settings import Settings
from touchpoint.pipeline.acks import log_epoch

log = logging.getLogger(__name__)


def beyond_log_end(highwaters: Mapping[Any, int | None], committed: Mapping[Any, int | None]) -> list[Any]:
    """Partitions whose committed offset is past the end of their log."""
    return [
        tp for tp, offset in committed.items()
        if offset is not None and highwaters.get(tp) is not None and offset > highwaters[tp]  # type: ignore[operator]
    ]  # fmt: skip


def confirmed(beyond: list[Any], committed: Mapping[Any, int | None], suspects: dict[Any, int | None]) -> list[Any]:
    """Of the partitions beyond their log end now, those that were so at the last check too, with the same
    committed offset (rule 3); ``suspects`` carries this check's partitions to the next."""
    seen_before = [tp for tp in beyond if tp in suspects and suspects[tp] == committed[tp]]
    suspects.clear()
    suspects.update({tp: committed[tp] for tp in beyond})
    return seen_before


@dataclass
class BrokerWatch:
    """What one worker remembers between checks."""

    cluster_id: str | None = None  # as this worker first saw it
    suspects: dict[Any, int | None] = field(default_factory=dict)  # rule 3's partitions at the last check
    rewind: bool = False  # a reset was seen and the partitions are not yet read from their new logs' start
    checking: asyncio.Lock = field(default_factory=asyncio.Lock)  # one check at a time: a reset is acted on once


async def remember_cluster(app: faust.App, settings: Settings, watch: BrokerWatch) -> None:
    """Note the cluster id as the worker starts (a reset before the first check is told by it too)."""
    try:
        watch.cluster_id = await cluster_id(app.producer._ensure_producer().client)
        log.info("Kafka cluster %s at %s", watch.cluster_id, settings.kafka_bootstrap)
    except Exception as exc:  # the broker may be away: the first check notes it then
        log.debug("cluster id not readable at start: %s", exc)


async def cluster_id(client: AIOKafkaClient) -> str | None:
    """The id the cluster reports in its metadata (Kafka Metadata v2 and later)."""
    response = await client.send(client.get_random_node(), MetadataRequest([]))  # no topics: brokers and the id
    return getattr(response, "cluster_id", None)


def wiped_on_reset(settings: Settings) -> list[str]:
    """The topics a reset's recreation wipes on the embedded broker: those only workers write to.

    Never the raw or dead-letter topic: connectors write there too, and an import that starts right after the
    restart creates the raw topic itself, or finds the one a worker just created and produces to it. A wipe
    then deleted those acknowledged records (seen in the broker-restart chaos test: 200 produced, 0 stored).
    What is left: a worker's own dead letter queued at the very moment of a restart may survive in the new
    dead-letter log (poison records only; the embedded broker is for trials)."""
    return [settings.topic_enriched]


async def check_cluster(app: faust.App, settings: Settings, watch: BrokerWatch) -> bool:
    """Rules 1 and 2 only (a new cluster id, topics gone): one metadata request, cheap enough for every second."""
    return await check_for_reset(app, settings, {}, {}, watch, offsets_read=False)


async def check_for_reset(
    app: faust.App, settings: Settings, highwaters: Mapping[Any, int | None], committed: Mapping[Any, int | None],
    watch: BrokerWatch, *, offsets_read: bool = True,
) -> bool:  # fmt: skip
    """Apply the policy above when the broker lost its state; True when it did. ``offsets_read`` False: the
    caller read no offsets, so rule 3 is not judged (nor are its suspects forgotten)."""
    async with watch.checking:
        client = app.producer._ensure_producer().client  # the worker's own connection
        await rewind_after_reset(app, settings, watch)  # one the last check could not finish
        seen = await cluster_id(client)
        watch.cluster_id = watch.cluster_id or seen
        known = (await client.fetch_all_metadata()).topics()
        missing = [t for t in (settings.topic_raw, settings.topic_enriched, settings.topic_dead_letter) if t not in known]
        beyond = confirmed(beyond_log_end(highwaters, committed), committed, watch.suspects) if offsets_read else []
        what = []
        if seen and seen != watch.cluster_id:
            what.append(f"its cluster id changed from {watch.cluster_id} to {seen}")
        if missing:
            what.append(f"topics {', '.join(missing)} are gone")
        if beyond:
            shown = ", ".join(f"{tp.topic}[{tp.partition}] at {committed[tp]} > end {highwaters[tp]}" for tp in beyond)
            what.append(f"committed offsets are beyond the log end ({shown})")
        if not what:
            return False
        log.error(
            "the Kafka broker at %s lost its state (%s): an in-memory broker restarted? Policy: recreate the topics "
            "and process the new logs from their start; records processed twice are deduplicated "
            "by signal_id; records not processed before the restart are gone with the old broker.",
            settings.kafka_bootstrap, "; ".join(what),
        )  # fmt: skip
        metrics.CONSUMER_LOG_RESETS.inc()
        watch.cluster_id = seen or watch.cluster_id
        watch.suspects.clear()
        watch.rewind = True
        start_new_log_epoch(app)  # batches read before now commit nothing, even if the rewind must wait
        wipe = wiped_on_reset(settings) if is_embedded_cluster(watch.cluster_id) else []
        await create_topics(settings, missing, wipe_unlisted_writes=wipe)
        await rewind_after_reset(app, settings, watch)
        return True


async def rewind_after_reset(app: faust.App, settings: Settings, watch: BrokerWatch) -> None:
    """After a reset: forget this worker's offsets of the old logs, read every partition it owns from the start
    of its new log, and commit those starts to the broker.

    The commit matters: as soon as the broker is back, Faust commits what it had acknowledged on the old
    logs, and the rebalance the restart causes would seek to those old numbers (past records of the new log).

    The next check rewinds again when the commit fails (the group is rebalancing) or when a rebalance ran
    while this one waited for its commit (the restart's own rejoin can finish then): that rebalance's seeks
    raced these, and a worker was seen with every record fetched and none handed to its agents, storing
    nothing more (the broker-restart chaos test, under load). Each rewind starts a new log epoch, so a batch
    read before it commits nothing; records read twice are deduplicated by signal_id."""
    if not watch.rewind or app.rebalancing:  # mid-rebalance (the restart causes one): the next check rewinds
        return
    consumer = app.consumer
    tps = [tp for tp in consumer.assignment() if tp.topic in (settings.topic_raw, settings.topic_enriched)]
    if not tps:
        return
    rebalances = app.rebalancing_count  # not the generation id: a restarted broker numbers those anew
    start_new_log_epoch(app)
    starts = await consumer.earliest_offsets(*tps)
    for tp in tps:
        for offsets in (consumer._acked, consumer._acked_index, consumer._gap, consumer._read_offset):
            offsets.pop(tp, None)  # Faust's bookkeeping of the old log (as a revocation clears it)
        consumer._committed_offset[tp] = None  # so the new log's offsets commit
        await consumer.seek(tp, starts[tp])
    committed = await commit_offsets(app, starts)
    raced = app.rebalancing or app.rebalancing_count != rebalances
    watch.rewind = not committed or raced
    why = "committing those starts failed" if not committed else "a rebalance ran meanwhile"
    again = f" ({why}: rewinding again at the next check)" if watch.rewind else ""
    log.warning("after the broker's reset: reading %d partitions from the start of their new logs%s", len(tps), again)


def start_new_log_epoch(app: faust.App) -> None:
    """Batches read before this call commit nothing (pipeline/acks.py ``HeldBatch``)."""
    app.touchpoint["log_epoch"] = log_epoch(app) + 1


async def commit_offsets(app: faust.App, offsets: Mapping[Any, int]) -> bool:
    """Commit ``offsets`` for the group on the consumer's own thread; False (not a crash) when the broker refuses."""
    thread = app.consumer._thread  # Faust runs the aiokafka consumer on its own thread and loop

    async def commit() -> bool:
        starts = {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
        try:
            await thread._ensure_consumer().commit(starts)
            return True
        except KafkaError as exc:
            log.debug("committing the new logs' starts failed: %r", exc)
            return False

    return bool(await thread.call_thread(commit))
