"""Commit offsets only after the data is safe, and never step over a batch.

Faust's ``Stream.take_events`` acks every event of a batch when the loop body
ends, *even when it ends by an exception or cancellation*; and when an agent's
body raises, Faust restarts the agent, which carries on with the next batch
while the failed one's offsets block every later commit. So:

1. :class:`HeldBatch` takes one extra reference on each message when the batch
   arrives, so that automatic ack can never reach zero; :meth:`HeldBatch.release`
   drops it once the outputs are durable (broker-acknowledged or inserted).
2. :func:`process_in_place` runs a batch's work until it succeeds, retrying
   the *same* batch with backoff (Quix Streams' "go back, don't skip"); the
   agent never raises, so Faust never restarts it past a held batch. While it
   retries, the component's status says why (readiness, the
   ``touchpoint_component_failing`` gauge, ``touchpoint_batch_retries_total``).
3. A cancel (shutdown, rebalance) leaves the offsets uncommitted: the batch is
   redelivered to whoever owns the partition next. At-least-once, made
   exactly-once downstream by the deterministic signal_id.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Sequence

from touchpoint.core import metrics
from touchpoint.core.retry import retry_until_done
from touchpoint.core.status import ComponentStatus

log = logging.getLogger(__name__)


class HeldBatch:
    def __init__(self, events: Sequence[Any]) -> None:
        self.events = list(events)
        for event in self.events:
            event.message.incref()

    async def release(self, stream: Any) -> None:
        """Data is safe: let Faust commit these offsets, unless the partitions were reassigned meanwhile.

        After a rebalance the batch's offsets belong to the previous generation:
        the partition's next owner starts from the offset the broker holds, so
        committing these (possibly from a log that no longer exists, see
        pipeline/broker_reset.py) could only skip records.
        """
        current = stream.app.consumer_generation_id
        for event in self.events:
            if event.message.generation_id in (None, current):
                await stream.ack(event)


async def process_in_place(
    stream: Any,
    events: Sequence[Any],
    work: Callable[[], Awaitable[None]],
    status: ComponentStatus,
    *,
    retry_initial_s: float,
    retry_max_s: float,
) -> None:
    """Hold ``events``, run ``work`` until it succeeds (rules 1-3 above), then release them.

    ``work`` must be safe to run again after a partial failure (outputs are
    idempotent by signal_id and dead-letter id) and should remember what it
    already computed, so a retry only redoes what failed.
    """
    batch = HeldBatch(events)

    def on_failure(exc: Exception, attempt: int, delay: float) -> None:
        metrics.BATCH_RETRIES.labels(status.name).inc()
        status.failed(f"{type(exc).__name__}: {exc}")
        first = events[0].message
        where = f"{first.topic}[{first.partition}]@{first.offset}+{len(events)}"
        if attempt == 1:
            log.exception("%s: batch %s failed; retrying it in place in %.1fs (offsets held)", status.name, where, delay)
        elif attempt % 10 == 0:
            log.error("%s: batch %s still failing after %d attempts: %s", status.name, where, attempt, exc)

    await retry_until_done(work, on_failure, initial_s=retry_initial_s, max_s=retry_max_s)
    if not status.ok:
        status.recovered()
    await batch.release(stream)
