"""Consumer lag per topic/partition, published as ``touchpoint_consumer_lag_messages``.

Lag = the partition's highwater (end offset) minus this group's committed
offset (the next offset to process). Committed, not fetched: offsets are
committed only after the rows are safe in ClickHouse, so this lag counts every
message not yet durably handled. Each worker reports only the partitions it
owns; ``sum by (topic)`` in PromQL gives the group's lag.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from touchpoint.core import metrics

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0


async def measure_lag(app: faust.App) -> dict[Any, int]:
    """Lag for every partition assigned to this worker (one ListOffsets round trip)."""
    consumer = app.consumer
    tps = sorted(consumer.assignment())
    if not tps:
        return {}
    highwater = await consumer.highwaters(*tps)
    committed = {tp: consumer._committed_offset.get(tp) for tp in tps}  # faust keeps no public getter
    unknown = [tp for tp, offset in committed.items() if offset is None]
    if unknown:  # nothing committed yet: everything from the log start is still to do
        committed.update(await consumer.earliest_offsets(*unknown))
    return metrics.lag_by_partition(highwater, committed)


def register_lag_timer(app: faust.App, interval_s: float = LAG_INTERVAL_S) -> None:
    """Refresh the lag gauge every ``interval_s``; drop partitions this worker no longer owns."""
    shown: set[tuple[str, str]] = set()

    @app.timer(interval=interval_s, name="touchpoint_consumer_lag")
    async def publish_lag() -> None:
        try:
            lags = await measure_lag(app)
        except Exception as exc:  # during a rebalance offsets can be unavailable; try next tick
            log.debug("consumer lag not measurable now: %s", exc)
            return
        current = set()
        for tp, lag in lags.items():
            labels = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            current.add(labels)
        for labels in shown - current:
            metrics.CONSUMER_LAG.remove(*labels)
        shown.clear()
        shown.update(current)
