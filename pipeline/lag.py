"""Consumer lag and commit progress per topic/partition, for metrics and readiness.

Lag = the partition's highwater (end offset) minus this group's committed
offset (the next offset to process). The end is the larger of the ListOffsets
answer and the high watermark of the consumer's last fetch (:func:`log_ends`).
Committed, not fetched: offsets are committed only after the rows are safe in
ClickHouse, so this lag counts every message not yet durably handled. Each
worker reports only the partitions it owns, and only of Touchpoint's own topics
(not Faust's internal ones); ``sum by (topic)`` in PromQL gives the group's lag.

Commit stall: seconds since a partition's committed offset last moved while
it had lag. A worker that cannot make progress (a store that keeps failing, a
batch retried in place) shows it here, in ``/readyz`` and in the
``TouchpointCommitsStalled`` alert, instead of looking healthy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import faust

from touchpoint.core import metrics
from touchpoint.core.settings import Settings
from touchpoint.pipeline.broker_reset import BrokerWatch, check_cluster, check_for_reset, remember_cluster

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0
BROKER_WATCH_INTERVAL_S = 1.0  # how soon a restarted broker is noticed (pipeline/broker_reset.py, rules 1 and 2)


@dataclass
class CommitProgress:
    """When each partition's committed offset last moved (or had no lag), to spot a stall."""

    stall_after_s: float
    _last: dict[Any, tuple[int | None, float]] = field(default_factory=dict)
    _stall: dict[Any, float] = field(default_factory=dict)

    def observe(self, tp: Any, committed: int | None, lag: int, now: float | None = None) -> float:
        """Record one reading; returns the seconds this partition has been stalled (0 when fine)."""
        now = time.monotonic() if now is None else now
        previous = self._last.get(tp)
        if previous is None or previous[0] != committed or lag == 0:
            self._last[tp] = (committed, now)
            self._stall[tp] = 0.0
        else:
            self._stall[tp] = now - previous[1]
        return self._stall[tp]

    def forget(self, tp: Any) -> None:
        self._last.pop(tp, None)
        self._stall.pop(tp, None)

    def stalled(self) -> dict[str, float]:
        """Partitions stalled longer than ``stall_after_s``, as 'topic[partition]' -> seconds."""
        return {f"{tp.topic}[{tp.partition}]": s for tp, s in self._stall.items() if s > self.stall_after_s}


@dataclass(frozen=True)
class PartitionState:
    highwater: dict[Any, int | None]
    committed: dict[Any, int | None]
    lag: dict[Any, int]


def log_ends(listed: Mapping[Any, int | None], fetched: Mapping[Any, int | None]) -> dict[Any, int | None]:
    """Each partition's end: the larger of the ListOffsets answer and the last fetch's high watermark.

    Why both: Tansu (the embedded broker) answers ListOffsets(latest) with the base offset of the partition's
    last record batch + 1, not its end; ten records produced in one batch at offsets 0-9 read as end 1 until
    another batch lands. The high watermark in a fetch response is right. On Kafka the two agree, the fetched one
    older by at most one fetch. Read from ListOffsets alone, the embedded broker under-reported lag and, once an
    import's last batch held several records, showed offsets "beyond the log end" that looked like a lost log
    (:mod:`touchpoint.pipeline.broker_reset`, rule 3)."""
    ends: dict[Any, int | None] = {}
    for tp in listed.keys() | fetched.keys():
        known = [end for end in (listed.get(tp), fetched.get(tp)) if end is not None]
        ends[tp] = max(known) if known else None
    return ends


def fetched_highwater(consumer: Any, tp: Any) -> int | None:
    """The high watermark of the last fetch from ``tp`` (None before the first, or once unassigned)."""
    try:
        return consumer.highwater(tp)
    except Exception:  # aiokafka raises for a partition no longer assigned (a rebalance between the two reads)
        return None


async def measure(app: faust.App, topics: set[str]) -> PartitionState:
    """End offset, committed offset and lag of every partition of ``topics`` assigned to this worker."""
    consumer = app.consumer
    tps = sorted(tp for tp in consumer.assignment() if tp.topic in topics)
    if not tps:
        return PartitionState({}, {}, {})
    highwater = log_ends(await consumer.highwaters(*tps), {tp: fetched_highwater(consumer, tp) for tp in tps})
    committed = {tp: consumer._committed_offset.get(tp) for tp in tps}  # faust keeps no public getter
    base = dict(committed)
    unknown = [tp for tp, offset in committed.items() if offset is None]
    if unknown:  # nothing committed yet: everything from the log start is still to do
        base.update(await consumer.earliest_offsets(*unknown))
    return PartitionState(dict(highwater), committed, metrics.lag_by_partition(highwater, base))


def register_lag_timer(app: faust.App, settings: Settings, interval_s: float = LAG_INTERVAL_S) -> None:
    """Refresh the lag and stall gauges every ``interval_s``; drop partitions this worker no longer owns.
    Watch the broker for a reset too: every second for a new cluster or lost topics, every tick for offsets
    beyond the log end (pipeline/broker_reset.py)."""
    topics = {settings.topic_raw, settings.topic_enriched}
    progress = CommitProgress(settings.commit_stall_s)
    app.touchpoint["commits"] = progress
    shown: set[Any] = set()
    watch = BrokerWatch()

    @app.task
    async def note_cluster() -> None:
        await remember_cluster(app, settings, watch)

    def forget_old_logs() -> None:  # after a reset the old logs' numbers mean nothing
        for tp in list(shown):
            progress.forget(tp)

    @app.timer(interval=BROKER_WATCH_INTERVAL_S, name="touchpoint_broker_watch")
    async def watch_broker() -> None:
        try:
            if await check_cluster(app, settings, watch):
                forget_old_logs()
        except Exception as exc:  # the broker may be away right now; the next second checks again
            log.debug("broker state not checkable now: %s", exc)

    @app.timer(interval=interval_s, name="touchpoint_consumer_lag")
    async def publish_lag() -> None:
        try:
            state = await measure(app, topics)
        except Exception as exc:  # during a rebalance (or with topics gone) offsets can be unavailable
            log.debug("consumer lag not measurable now: %s", exc)
            state = PartitionState({}, {}, {})
        for tp, lag in state.lag.items():
            labels = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            metrics.COMMIT_STALL_SECONDS.labels(*labels).set(progress.observe(tp, state.committed.get(tp), lag))
        for tp in shown - set(state.lag):
            labels = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.remove(*labels)
            metrics.COMMIT_STALL_SECONDS.remove(*labels)
            progress.forget(tp)
        shown.clear()
        shown.update(state.lag)
        try:
            if await check_for_reset(app, settings, state.highwater, state.committed, watch):
                forget_old_logs()
        except Exception as exc:  # the broker may be away right now; the next tick checks again
            log.debug("broker state not checkable now: %s", exc)
