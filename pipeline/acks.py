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
4. :class:`InFlight` pipelines rules 1-3: up to ``depth`` batches are worked on
   at once (the models run on batch k+1 while the broker acknowledges batch
   k's outputs and the sink inserts), each retried in place on its own, and
   released strictly in arrival order, each only after its own work
   succeeded. A failing batch holds every later one behind it (at most
   ``depth``: then the agent stops taking batches), so no offset is ever
   committed past a batch whose outputs are not safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Sequence

from touchpoint.core import metrics
from touchpoint.core.retry import retry_until_done
from touchpoint.core.status import ComponentStatus

log = logging.getLogger(__name__)


def log_epoch(app: Any) -> int:
    """How many times this worker saw the broker lose its logs (pipeline/broker_reset.py)."""
    return int(app.touchpoint.get("log_epoch", 0))


class HeldBatch:
    def __init__(self, events: Sequence[Any], epoch: int = 0) -> None:
        self.events = list(events)
        self.epoch = epoch  # log_epoch when the batch was read
        for event in self.events:
            event.message.incref()

    async def release(self, stream: Any) -> None:
        """Data is safe: let Faust commit these offsets, unless the partitions were reassigned meanwhile.

        After a rebalance the batch's offsets belong to the previous generation:
        the partition's next owner starts from the offset the broker holds, so
        committing these (possibly from a log that no longer exists, see
        pipeline/broker_reset.py) could only skip records. The same after the
        broker lost its logs: a restarted broker numbers generations anew, so
        the log epoch tells old batches apart.
        """
        if self.epoch != log_epoch(stream.app):
            return
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
    batch = HeldBatch(events, log_epoch(stream.app))
    await run_until_done(events, work, status, retry_initial_s=retry_initial_s, retry_max_s=retry_max_s)
    await batch.release(stream)


async def run_until_done(
    events: Sequence[Any], work: Callable[[], Awaitable[None]], status: ComponentStatus, *,
    retry_initial_s: float, retry_max_s: float,
) -> None:  # fmt: skip
    """Rule 2: ``work`` again and again with backoff until it succeeds, the status and log saying why meanwhile."""

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


class InFlight:
    """Rule 4: up to ``depth`` batches worked on at once, released in arrival order once each succeeded.

    ``async with InFlight(...) as flight: await flight.submit(events, work)``
    in the agent's loop. Leaving the block (the stream stopped, or a cancel at
    shutdown) releases the leading batches that are done and cancels the rest:
    their offsets stay uncommitted and their records are redelivered to the
    partition's next owner, never skipped.
    """

    def __init__(self, stream: Any, status: ComponentStatus, depth: int, *, retry_initial_s: float,
                 retry_max_s: float) -> None:  # fmt: skip
        self.stream, self.status, self.depth = stream, status, max(1, depth)
        self._retry = {"retry_initial_s": retry_initial_s, "retry_max_s": retry_max_s}
        self._flight: deque[tuple[HeldBatch, asyncio.Task[None]]] = deque()
        self._order = asyncio.Lock()  # releases happen in arrival order, one at a time
        self._releasers: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> "InFlight":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:  # a cancelled agent must not wait here: it only cancels
            while self._flight and self._flight[0][1].done():
                await self._release_oldest()
        self.cancel()

    async def submit(self, events: Sequence[Any], work: Callable[[], Awaitable[None]]) -> None:
        """Hold the batch and start its work; returns once fewer than ``depth`` batches are in flight.

        A batch is released as soon as it and every batch before it succeeded, not at the next submit:
        when the stream goes quiet, the last batch still commits (lag reaches zero)."""
        batch = HeldBatch(events, log_epoch(self.stream.app))  # taken at once: Faust's own ack can never commit it
        task = asyncio.ensure_future(run_until_done(events, work, self.status, **self._retry))
        self._flight.append((batch, task))
        task.add_done_callback(lambda _: self._releasers.add(asyncio.ensure_future(self._release_done())))
        while self._flight and len(self._flight) >= self.depth:
            await self._release_oldest()

    async def drain(self) -> None:
        """Wait for every batch in flight, releasing each in order."""
        while self._flight:
            await self._release_oldest()

    def cancel(self) -> None:
        for releaser in self._releasers:
            releaser.cancel()
        while self._flight:
            _, task = self._flight.popleft()
            task.cancel()

    async def _release_oldest(self) -> None:
        _, task = self._flight[0]
        await asyncio.shield(task)  # a cancel of the agent cancels the wait, then __aexit__ cancels the task
        await self._release_done()

    async def _release_done(self) -> None:
        """Release the leading batches whose work succeeded, in order."""
        async with self._order:
            while self._flight and self._flight[0][1].done() and not self._flight[0][1].cancelled():
                batch, _ = self._flight.popleft()
                await batch.release(self.stream)
        self._releasers = {r for r in self._releasers if not r.done()}
