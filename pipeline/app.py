"""The Faust app: an enrich agent and a sink agent, built from settings.

``create_app(settings)`` builds it; ``touchpoint.pipeline.app.app`` (what
``faust -A touchpoint.pipeline.app worker`` looks up) is built from ``Settings()`` on
first access, never at import time.

Flow and guarantees:
1. enrich: ``signals.raw`` -> takes (``take_events``, ``enrich_take_size``) -> signals
   without text straight on, texts to the models on a thread ``enrich_batch_size`` at a
   time -> ``signals.enriched`` (each model batch sent as soon as it is enriched);
   bad records -> ``signals.dead-letter``.
2. sink: ``signals.enriched`` -> batches -> ClickHouse; rejected rows -> dead letter.
   With routing rules, also route (``signals.enriched`` -> ``cx.actions``) and
   cases (``cx.actions`` -> cases, deliveries): pipeline/loop.py.
3. A batch's offsets are committed only after every output of it was
   acknowledged by the broker or inserted into ClickHouse (pipeline/acks.py).
   Several batches are in flight at once (``enrich_batches_in_flight``,
   ``sink_batches_in_flight``), released in order (acks.InFlight).
4. ``worker_role`` picks the agents: ``enrich`` (models only, no store: scale
   these replicas with the partitions of ``signals.raw``), ``sink`` (store,
   API, routing, alerts; no models) or ``all`` (one process, the default).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

import faust

from touchpoint.core.deadletter import DeadLetterCodec
from touchpoint.core.kafka import all_answered, faust_broker_url, send_batched
from touchpoint.core.metrics import ENRICH_EVENTS_OUT, count_dead_letters
from touchpoint.core.sealing import Sealer
from touchpoint.core.settings import Settings
from touchpoint.core.status import ComponentStatus
from touchpoint.models.encoder import configure_inference
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.acks import InFlight
from touchpoint.pipeline.alerts.actions import announce
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.api import register_api
from touchpoint.pipeline.enrichment import EnrichStage, Incoming, StageResult, models_for
from touchpoint.pipeline.fetch import use_batch_drain
from touchpoint.pipeline.health import register_ops
from touchpoint.pipeline.loop import register_loop
from touchpoint.pipeline.monitor import faust_app_options
from touchpoint.pipeline.sink import SinkStage
from touchpoint.pipeline.store import AsyncStore

log = logging.getLogger(__name__)


def incoming(events: Sequence[Any]) -> list[Incoming]:
    return [
        Incoming(e.message.key, e.message.value, e.message.topic, e.message.partition, e.message.offset)
        for e in events
    ]


async def deliver(topic: Any, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send and wait until the broker acknowledged every message; raises the first failure (after all answered).
    Record batches per partition, not a send per record (core/kafka.py ``send_batched``)."""
    await send_batched(topic.app.producer._ensure_producer(), topic.get_topic_name(), items)


def create_app(settings: Settings, enricher: Enricher | None = None) -> faust.App:
    """A Faust app for these settings; pass ``enricher`` to reuse loaded models."""
    app = faust.App(
        settings.app_id,
        broker=faust_broker_url(settings),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topic_partitions,
        producer_acks=-1,
        broker_commit_interval=settings.commit_interval_s,
        broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
        broker_session_timeout=settings.kafka_session_timeout_s,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        store="memory://",
        # Faust keeps per-app state files; keep them under data_dir, not the working directory.
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        # Held (failed) batches are never acked; shutdown must not wait for them:
        # their offsets stay uncommitted and the next worker gets them again.
        stream_wait_empty=False,
        **faust_app_options(),  # no per-message stats for Faust's own pages (pipeline/monitor.py)
    )
    use_batch_drain(app)  # one hand-over task per fetched batch, not four per message (pipeline/fetch.py)
    raw = app.topic(settings.topic_raw, key_type=bytes, value_type=bytes)
    enriched = app.topic(settings.topic_enriched, key_type=bytes, value_type=bytes)
    dead = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)

    sealer = Sealer.from_settings(settings)
    letter_codec = DeadLetterCodec(sealer, settings.dead_letter_max_payload_bytes)
    batches = {name: ComponentStatus(f"{name}_batch") for name in roles_parts(settings.worker_role)}
    app.touchpoint = {"batches": batches}  # for ops endpoints, tools and tests; each role adds its parts below
    register_ops(app, settings)  # /metrics, /healthz, /readyz on the web server; consumer-lag timer
    retry = {"retry_initial_s": settings.store_retry_initial_s, "retry_max_s": settings.store_retry_max_s}

    async def send_dead(dead_letters: Sequence[dict[str, Any]]) -> None:
        await deliver(dead, [(letter["key"], letter_codec.encode(letter)) for letter in dead_letters])
        count_dead_letters(dead_letters)

    if "enrich" in batches:
        enrich_stage = EnrichStage(models_for(settings, enricher), sealer)
        app.touchpoint["enrich"] = enrich_stage

        @app.agent(raw, name="enrich")
        async def enrich(stream: faust.StreamT) -> None:
            await enrich_stage.load()
            window = InFlight(stream, batches["enrich"], settings.enrich_batches_in_flight, **retry)
            async with window:  # the models run on one batch while earlier ones are being acknowledged
                async for events in stream.take_events(settings.enrich_take_size, within=settings.enrich_batch_window_s):
                    await window.submit(events, enrich_work(events))

        def enrich_work(events: Sequence[Any]) -> Callable[[], Awaitable[None]]:
            done: list[StageResult] = []  # the models run once per take; a retry only re-sends

            async def work() -> None:
                if not done:
                    sends: list[asyncio.Future[None]] = []  # each model batch is sent while the next one runs

                    def send(outputs: list[tuple[bytes | None, bytes]]) -> None:
                        sends.append(asyncio.ensure_future(deliver(enriched, outputs)))

                    done.append(await enrich_stage.process(incoming(events), settings.enrich_batch_size, send))
                    await all_answered(sends)
                else:
                    await deliver(enriched, done[0].outputs)
                await send_dead(done[0].dead_letters)
                ENRICH_EVENTS_OUT.inc(len(done[0].outputs))

            return work

    if "sink" in batches:
        writer = AsyncStore.from_settings(settings, threads=1, name="clickhouse-write")  # the sink's inserts only
        reader = AsyncStore.from_settings(settings, threads=2, name="clickhouse-read")  # API queries never wait for inserts
        sink_stage = SinkStage(writer, settings.store_retry_initial_s, settings.store_retry_max_s)
        app.touchpoint.update(sink=sink_stage, store=writer, reader=reader)
        register_api(app, reader, settings)  # /api/v1/... metric API on the same web server
        if settings.alert_watch_in_worker:
            register_alert_timer(app, reader, settings)  # mostly reads; its ledger writes are a few rows

        @app.agent(enriched, name="sink")
        async def sink(stream: faust.StreamT) -> None:
            await sink_stage.migrate()  # waits out a store that is not reachable yet
            window = InFlight(stream, batches["sink"], settings.sink_batches_in_flight, **retry)
            async with window:  # decoding the next batch overlaps this one's insert
                async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_batch_window_s):
                    await window.submit(events, sink_work(events))

        def sink_work(events: Sequence[Any]) -> Callable[[], Awaitable[None]]:
            letters: list[list[dict[str, Any]]] = []  # rows are stored once per batch; a retry only re-sends letters

            async def work() -> None:
                if not letters:
                    letters.append(await sink_stage.process(incoming(events)))
                await send_dead(letters[0])

            return work

        register_loop(app, settings, writer, reader, enriched, deliver, send_dead, incoming)  # route + cases, with routing rules
    return app


def roles_parts(role: str) -> tuple[str, ...]:
    """The agents a worker role runs: enrich (models, no store), sink (store, API, routing, alerts) or all."""
    return {"all": ("enrich", "sink"), "enrich": ("enrich",), "sink": ("sink",)}[role]


def register_alert_timer(app: faust.App, store: AsyncStore, settings: Settings) -> None:
    """Alerts every ``alert_interval_s`` on the leader only (one watcher per app), on a store thread;
    with routing rules (pipeline/loop.py), what opened or resolved goes to cx.actions."""
    actions = app.topic(settings.topic_actions, key_type=bytes, value_type=bytes)

    @app.timer(settings.alert_interval_s, on_leader=True)
    async def watch_alerts() -> None:
        try:
            cycle = await store.call(watch_once, settings, datetime.now(timezone.utc))
            for alert in cycle.opened:
                log.warning("alert opened: %s", alert.summary)
            source = app.touchpoint.get("rules")  # set by register_loop when routing is on
            await announce(store, settings, source.current() if source else None, lambda items: deliver(actions, items))
        except Exception:  # a failed cycle (store or broker down, tables not migrated yet) is retried at the next tick
            log.exception("alert watch cycle failed; retrying at the next tick")


def __getattr__(name: str) -> Any:
    """``touchpoint.pipeline.app.app`` for ``faust -A``, built lazily from the environment.

    This is an entry point (faust's own CLI owns the process), so it also sets
    torch's threads; ``touchpoint worker`` builds its app with explicit settings instead.
    """
    if name == "app":
        global app
        settings = Settings()
        configure_inference(settings.torch_threads)
        app = create_app(settings)
        return app
    raise AttributeError(name)
