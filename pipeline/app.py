"""The Faust app: an enrich agent and a sink agent, built from settings.

``create_app(settings)`` builds it; ``pipeline.app.app`` (what
``faust -A pipeline.app worker`` looks up) is built from ``Settings()`` on
first access, never at import time.

Flow and guarantees:
1. enrich: ``signals.raw`` -> batches (``take_events``) -> models on a thread
   -> ``signals.enriched``; bad records -> ``signals.dead-letter``.
2. sink: ``signals.enriched`` -> batches -> ClickHouse; rejected rows -> dead letter.
3. A batch's offsets are committed only after every output of it was
   acknowledged by the broker or inserted into ClickHouse (pipeline/acks.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

import faust

from models.enricher import Enricher, EnricherConfig
from pipeline.acks import HeldBatch
from pipeline.api import register_api
from pipeline.deadletter import encode_dead_letter
from pipeline.enrichment import EnrichStage, Incoming
from pipeline.health import register_ops
from pipeline.metrics import ENRICH_EVENTS_OUT, count_dead_letters
from pipeline.kafka import faust_broker_url
from pipeline.settings import Settings
from pipeline.sink import SinkStage
from pipeline.store import AsyncStore, Store

log = logging.getLogger(__name__)


def enricher_config(settings: Settings) -> EnricherConfig:
    return EnricherConfig(
        encoder_path=settings.encoder_path,
        sentiment_head_path=settings.sentiment_head_path,
        taxonomy_path=settings.taxonomy_path,
        max_tokens=settings.max_text_tokens,
        encoder_batch_size=settings.encoder_batch_size,
        torch_threads=settings.torch_threads,
        touchpoint_min_similarity=settings.touchpoint_min_similarity,
        touchpoint_max_tags=settings.touchpoint_max_tags,
        phone_region=settings.phone_region,
        sentiment_model=settings.sentiment_model,
        sentiment_label_map=settings.sentiment_label_map,
    )


def incoming(events: Sequence[Any]) -> list[Incoming]:
    return [
        Incoming(e.message.key, e.message.value, e.message.topic, e.message.partition, e.message.offset)
        for e in events
    ]


async def deliver(topic: Any, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send and wait until the broker acknowledged every message."""
    futures = [await topic.send(key=key, value=value) for key, value in items]
    await asyncio.gather(*futures)


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
    )
    raw = app.topic(settings.topic_raw, key_type=bytes, value_type=bytes)
    enriched = app.topic(settings.topic_enriched, key_type=bytes, value_type=bytes)
    dead = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)

    enrich_stage = EnrichStage(lambda: enricher or Enricher(enricher_config(settings)))
    store = AsyncStore(Store.from_settings(settings))
    sink_stage = SinkStage(store, settings.store_retry_initial_s, settings.store_retry_max_s)
    app.touchpoint = {"enrich": enrich_stage, "sink": sink_stage, "store": store}  # for tools and tests
    register_ops(app, settings)  # /metrics, /healthz, /readyz on the web server; consumer-lag timer
    register_api(app, store, settings)  # /api/v1/... metric API on the same web server

    async def send_dead(letters: Sequence[dict[str, Any]]) -> None:
        await deliver(dead, [(letter["key"], encode_dead_letter(letter)) for letter in letters])
        count_dead_letters(letters)

    @app.agent(raw, name="enrich")
    async def enrich(stream: faust.StreamT) -> None:
        await enrich_stage.load()
        async for events in stream.take_events(settings.enrich_batch_size, within=settings.enrich_batch_window_s):
            batch = HeldBatch(events)
            result = await enrich_stage.process(incoming(events))
            await deliver(enriched, result.outputs)
            ENRICH_EVENTS_OUT.inc(len(result.outputs))
            await send_dead(result.dead_letters)
            await batch.release(stream)

    @app.agent(enriched, name="sink")
    async def sink(stream: faust.StreamT) -> None:
        await sink_stage.migrate()  # waits out a store that is not reachable yet
        async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_batch_window_s):
            batch = HeldBatch(events)
            letters = await sink_stage.process(incoming(events))
            await send_dead(letters)
            await batch.release(stream)

    return app


def __getattr__(name: str) -> Any:
    """``pipeline.app.app`` for the faust CLI, built lazily from the environment."""
    if name == "app":
        global app
        app = create_app(Settings())
        return app
    raise AttributeError(name)
