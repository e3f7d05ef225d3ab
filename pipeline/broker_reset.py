"""A broker that lost its state: the worker notices, says so once, and goes on.

A Kafka cluster keeps its topics and the group's offsets through restarts; the
embedded broker (Tansu with memory storage, for trials) does not: after it
restarts, Touchpoint's topics are gone or new and empty, and a worker would
otherwise commit its old offsets beyond the new logs' end (skipping what
arrives, with an OffsetCommit error per second) and wait forever on a topic
nobody recreates.

Policy, checked on every consumer-lag tick (:func:`check_for_reset`):

1. **Unknown topics** (one of the worker's topics is missing on the broker):
   recreate them with ``topic_partitions`` partitions.
2. **Offsets beyond the log end** (a partition's committed offset is past the
   new log's end) at two checks in a row, with the same committed offset: the
   old offsets mean nothing on this log. One check is not enough: under load
   Tansu's ListOffsets answer can trail its log by a few records for a moment
   (seen by bench/e2e.py), and a false alarm would rebalance a healthy group.
3. In either case: one error line naming what happened and this policy, the
   ``touchpoint_consumer_log_resets_total`` counter, and a rejoin of the
   consumer group, so every partition starts again from the offsets the
   broker now holds (none: the start of the new logs). What the new logs
   hold is processed; records processed twice are deduplicated by
   signal_id. A batch still in flight from before the reset does not commit
   its old offsets (:class:`touchpoint.pipeline.acks.HeldBatch` checks the
   generation).

Records produced before the restart and not yet processed are gone with the
old broker: nothing can recover them, which is why the embedded broker is
for trials and tests (README, "The embedded broker").
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import faust

from touchpoint.core import metrics
from touchpoint.core.kafka import create_topics
from touchpoint.core.settings import Settings

log = logging.getLogger(__name__)


def beyond_log_end(highwaters: Mapping[Any, int | None], committed: Mapping[Any, int | None]) -> list[Any]:
    """Partitions whose committed offset is past the end of their log."""
    return [
        tp for tp, offset in committed.items()
        if offset is not None and highwaters.get(tp) is not None and offset > highwaters[tp]  # type: ignore[operator]
    ]  # fmt: skip


def confirmed(beyond: list[Any], committed: Mapping[Any, int | None], suspects: dict[Any, int | None]) -> list[Any]:
    """Of the partitions beyond their log end now, those that were so at the last check too, with the same
    committed offset (rule 2); ``suspects`` carries this check's partitions to the next."""
    seen_before = [tp for tp in beyond if tp in suspects and suspects[tp] == committed[tp]]
    suspects.clear()
    suspects.update({tp: committed[tp] for tp in beyond})
    return seen_before


async def check_for_reset(
    app: faust.App, settings: Settings, highwaters: Mapping[Any, int | None], committed: Mapping[Any, int | None],
    suspects: dict[Any, int | None],
) -> bool:  # fmt: skip
    """Apply the policy above when the broker lost its state; True when it did. ``suspects``: the same dict at
    every check (partitions beyond their log end at the previous one)."""
    cluster = await app.producer._ensure_producer().client.fetch_all_metadata()  # the worker's own connection
    known = cluster.topics()
    missing = [t for t in (settings.topic_raw, settings.topic_enriched, settings.topic_dead_letter) if t not in known]
    beyond = confirmed(beyond_log_end(highwaters, committed), committed, suspects)
    if not missing and not beyond:
        return False
    what = []
    if missing:
        what.append(f"topics {', '.join(missing)} are gone")
    if beyond:
        shown = ", ".join(f"{tp.topic}[{tp.partition}] at {committed[tp]} > end {highwaters[tp]}" for tp in beyond)
        what.append(f"committed offsets are beyond the log end ({shown})")
    log.error(
        "the Kafka broker at %s lost its state (%s): an in-memory broker restarted? Policy: recreate the topics, "
        "rejoin the group and process the new logs from their start; records processed twice are deduplicated "
        "by signal_id; records not processed before the restart are gone with the old broker.",
        settings.kafka_bootstrap, "; ".join(what),
    )  # fmt: skip
    metrics.CONSUMER_LOG_RESETS.inc()
    suspects.clear()
    await create_topics(settings, missing)
    rejoin(app)
    return True


def rejoin(app: faust.App) -> None:
    """Ask the group coordinator for a new generation (a rebalance): partitions are revoked, their
    in-memory offsets dropped, and assigned again at the offsets the broker holds."""
    app.consumer._thread._ensure_consumer()._coordinator.request_rejoin()  # the aiokafka consumer Faust wraps
