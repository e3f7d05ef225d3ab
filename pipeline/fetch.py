"""Faust's Kafka consumer with one dispatch task per fetched batch instead of four per message.

Faust's fetcher hands each fetched message to the streams with
``wait_first(callback(message), suspend_flow.wait())``: four tasks and an
``asyncio.wait`` per message, so that a rebalance (which sets ``suspend_flow``)
can interrupt a callback that is blocked on a full stream buffer. For a
score-only signal that was the largest cost left on the event loop after Avro
(issue 18, item 3; profiled in the README).

:class:`BatchDrainConsumer` keeps that interruption but pays for it once per
fetched batch: the batch's messages are handed over one after another inside a
single task, raced against ``suspend_flow`` as before. What changes:

* a rebalance cancels the rest of the batch as well as the blocked callback.
  Faust's own ``getmany`` already stops at the next message once flow stops,
  so the same messages are handed over; a message whose callback was cancelled
  no longer moves the read offset (Faust's loop moved it either way);
* the ``broker_commit_every`` check runs before each batch, not before each
  message (the commit timer, ``broker_commit_interval``, is unchanged).

Everything else (read offsets, gap tracking, fairness ``sleep(0)``) is Faust's
``Consumer._drain_messages`` of faust-streaming 0.15 as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerT, Message
from mode import Service, ServiceT

YIELD_EVERY = 100  # messages handed over between two sleep(0)s, as in Faust


async def chain(first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]) -> AsyncIterator[tuple[TP, Message]]:
    """``first``, then the rest of the fetch it was taken from (it was awaited outside the race)."""
    yield first
    async for item in rest:
        yield item


class BatchDrainConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; only the hand-over of fetched messages differs (module doc)."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = cast(AsyncIterator[tuple[TP, Message]], self.getmany(timeout=1.0))
                await self.sleep(0)  # as Faust: getmany may return at once, again and again
                if not self.should_stop:
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    # the fetch stays outside the race: while the flow is stopped it waits for the flow to
                    # resume (inside, a set suspend_flow would cancel it at once, again and again)
                    first = await anext(batch, None)
                    if first is not None:
                        await self.wait_first(self._hand_over(first, batch), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)  # noqa: TRY401 (as Faust logs it)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]) -> None:
        """Every message of one fetch to the streams, in order, skipping what was already read."""
        callback, read_offset = self.callback, self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        async for tp, message in chain(first, rest):
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset, last = message.offset, read_offset[tp]
            if last is not None and offset < last:
                self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                continue
            if last and offset - last > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, last + 1, offset)  # a gap in the offsets (compaction, transactions)
            await callback(message)
            read_offset[tp] = offset


class BatchDrainTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = BatchDrainConsumer


def use_batch_drain(app: faust.App) -> None:
    """Give ``app`` the batch-drain consumer; call before anything touches ``app.transport``
    (``app.topic`` does, through the conductor)."""
    app.transport = BatchDrainTransport(app.conf.broker_consumer, app)

