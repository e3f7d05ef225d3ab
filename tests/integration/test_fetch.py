"""The batch-drain consumer (pipeline/fetch.py) on the real broker: every message handed over once, in
order, and a rebalance still interrupts a hand-over that is blocked on a full stream buffer.

That interruption is why Faust races each message's callback against ``suspend_flow``: without it a
worker whose agent is stuck (a store outage holds its batches) could not give its partitions up.
The batch drain races once per fetched batch instead; the last test shows that racing at all matters
(a drain that awaits directly stays blocked: the negative control).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer

from tests.polling import wait_for
from touchpoint.core.kafka import client_options, faust_broker_url
from touchpoint.core.settings import Settings
from touchpoint.pipeline.app import create_app
from touchpoint.pipeline.fetch import BatchDrainConsumer, BatchDrainTransport
from touchpoint.pipeline.monitor import QuietMonitor


class WatchedConsumer(BatchDrainConsumer):
    """Counts hand-overs that a suspended flow cut short."""

    interrupted = 0

    async def _hand_over(self, first: Any, rest: Any) -> None:
        try:
            await super()._hand_over(first, rest)
        except asyncio.CancelledError:
            type(self).interrupted += 1
            raise


class DirectConsumer(WatchedConsumer):
    """The negative control: hands a batch over without racing it against suspend_flow."""

    async def _drain_messages(self, fetcher: Any) -> None:
        while not self.should_stop:
            batch = self.getmany(timeout=1.0)
            first = await anext(batch, None)
            if first is not None:
                await self._hand_over(first, batch)


def transport_of(consumer: type[BatchDrainConsumer]) -> type[BatchDrainTransport]:
    return type("Transport", (BatchDrainTransport,), {"Consumer": consumer})


@asynccontextmanager
async def agent_app(settings: Settings, tmp_path: Path, consumer: type[BatchDrainConsumer],
                    on_event: Callable[[bytes], Any], buffer: int = 4096) -> AsyncIterator[faust.App]:  # fmt: skip
    """A Faust worker with ``consumer`` and one agent calling ``await on_event(value)`` per event."""
    name = f"fetch-{uuid.uuid4().hex[:8]}"
    app = faust.App(name, broker=faust_broker_url(settings), value_serializer="raw", web_enabled=False,
                    store="memory://", datadir=str(tmp_path / name), autodiscover=False, topic_partitions=1,
                    stream_buffer_maxsize=buffer, stream_wait_empty=False,
                    broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
                    broker_session_timeout=settings.kafka_session_timeout_s)  # fmt: skip
    app.transport = transport_of(consumer)(app.conf.broker_consumer, app)
    topic = app.topic(name, value_type=bytes, partitions=1)

    @app.agent(topic)
    async def agent(stream: faust.StreamT) -> None:
        async for value in stream:
            await on_event(value)

    await produce(settings, name, 300)
    worker = faust.Worker(app, loop=asyncio.get_running_loop(), daemon=False, quiet=True, override_logging=False,
                          redirect_stdouts=False)  # fmt: skip
    await worker.start()
    try:
        yield app
    finally:
        app.consumer.resume_flow()
        await worker.stop()


async def produce(settings: Settings, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, str(i).encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def test_the_worker_uses_the_batch_drain(live_settings: Settings) -> None:
    app = create_app(live_settings.with_overrides(worker_role="enrich"))
    assert isinstance(app.consumer, BatchDrainConsumer)


async def test_the_worker_keeps_no_per_message_stats_for_pages_it_does_not_serve(live_settings: Settings) -> None:
    app = create_app(live_settings.with_overrides(worker_role="enrich"))  # pipeline/monitor.py
    assert isinstance(app.monitor, QuietMonitor)
    assert not (app.conf.web_stats_enabled or app.conf.web_metrics_enabled), "they would show the quiet monitor's zeros"


async def test_every_message_is_handed_over_once_in_order(live_settings: Settings, tmp_path: Path) -> None:
    seen: list[int] = []

    async def note(value: bytes) -> None:
        seen.append(int(value))

    async with agent_app(live_settings, tmp_path, WatchedConsumer, note):
        await wait_for(lambda: asyncio.sleep(0, len(seen) >= 300), 60)
    assert seen[:300] == list(range(300))


@pytest.mark.parametrize(("consumer", "interrupted"), [(WatchedConsumer, True), (DirectConsumer, False)])
async def test_a_rebalance_interrupts_a_hand_over_blocked_on_a_full_buffer(
    live_settings: Settings, tmp_path: Path, consumer: type[WatchedConsumer], interrupted: bool
) -> None:
    stuck, taken = asyncio.Event(), []

    async def block(value: bytes) -> None:  # the agent takes one event and never comes back for more
        taken.append(value)
        await stuck.wait()

    consumer.interrupted = 0
    async with agent_app(live_settings, tmp_path, consumer, block, buffer=1) as app:
        await wait_for(lambda: asyncio.sleep(0, taken), 60)
        await asyncio.sleep(1.0)  # the buffer (1) fills; the next hand-over waits on it
        assert consumer.interrupted == 0  # blocked, not interrupted, until a rebalance suspends the flow
        app.consumer.stop_flow()  # what Faust does when the group rebalances
        if interrupted:
            await wait_for(lambda: asyncio.sleep(0, consumer.interrupted), 10)
        await asyncio.sleep(2.0)
        # once: the stopped flow then waits in the fetch, it does not spin on hand-overs cancelled at once
        assert consumer.interrupted == int(interrupted)
        stuck.set()
