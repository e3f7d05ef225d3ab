"""Faust's monitor without its per-message bookkeeping.

Faust's :class:`~faust.sensors.monitor.Monitor` is a sensor on every message:
counters by topic and stream, timestamps, deques of event and send latencies.
It feeds Faust's own statistics pages (``/stats``, ``/performance``), which a
Touchpoint worker does not serve (:func:`faust_app_options` turns them off);
Touchpoint's numbers are its Prometheus metrics (``touchpoint.core.metrics``),
counted once per signal where the pipeline handles it.

At 10,000 score-only signals/s those per-message hooks were event-loop time
spent on numbers nobody reads: in one interleaved ``bench/e2e.py``-style run,
CPU per stored signal 74 µs with this monitor against 81 µs with Faust's (the
README's performance section). Rebalance, commit and assignment hooks, which
are rare, keep Faust's behaviour.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.monitor import Monitor


class QuietMonitor(Monitor):
    """Faust's monitor minus the hooks called for every message, event and send."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None  # Faust passes this back to on_stream_event_out as its state

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> None:
        return None  # Faust passes this back to on_send_completed as its state

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass


def faust_app_options() -> dict[str, Any]:
    """The quiet monitor, and off the Faust pages that would show its empty numbers."""
    return {"monitor": QuietMonitor(), "web_stats_enabled": False, "web_metrics_enabled": False}
