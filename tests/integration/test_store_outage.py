"""A store that fails is retried, never dead-lettered; readiness says why; nothing is lost or doubled."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from prometheus_client import REGISTRY

from tests.faults import table_folder, unwritable
from tests.polling import wait_for
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.testing import read_topic
from touchpoint.core.settings import Settings
from touchpoint.pipeline.health import readiness
from touchpoint.pipeline.runtime import running_worker
from touchpoint.pipeline.store import Store
from touchpoint.schemas.signal import RawSignal, Score

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def score_only(i: int) -> RawSignal:
    return RawSignal(source="outage", source_id=str(i), channel="survey", brand="acme", occurred_at=WHEN,
                     score=Score("nps", i % 11, 0, 10))  # fmt: skip


async def produce(settings: Settings, signals: list[RawSignal]) -> None:
    async with SignalProducer(settings) as producer:
        await asyncio.gather(*[await producer.send(s) for s in signals])


def failures(kind: str) -> float:
    return REGISTRY.get_sample_value("touchpoint_sink_insert_failures_total", {"kind": kind}) or 0.0


async def test_an_unwritable_store_is_retried_not_dead_lettered(live_settings: Settings, enricher) -> None:
    settings = live_settings.with_overrides(store_retry_initial_s=0.2, store_retry_max_s=1.0)
    first, during = [score_only(i) for i in range(20)], [score_only(i) for i in range(20, 50)]
    retries_before, bad_before = failures("retry"), failures("bad_rows")
    async with running_worker(settings, enricher) as app:
        reader = app.touchpoint["reader"]

        async def stored(n: int) -> bool:
            return await reader.call(Store.count_stored, [s.signal_id for s in first + during]) >= n

        await produce(settings, first)
        await wait_for(lambda: stored(20))
        folder = await reader.call(table_folder, "signals")
        with unwritable(folder):
            await produce(settings, during)

            async def store_not_ready() -> str | None:
                checks = {c.name: c for c in await readiness(app)}
                return None if checks["store"].ok else checks["store"].detail

            detail = await wait_for(store_not_ready, timeout_s=60)
            assert "sink failing" in detail and "insert" in detail, detail
            assert failures("retry") > retries_before
            await asyncio.sleep(2)  # several more attempts while the disk refuses
        await wait_for(lambda: stored(50), timeout_s=60)
        checks = {c.name: c for c in await readiness(app)}
        assert checks["store"].ok and checks["batches"].ok, checks
    letters = await read_topic(settings, settings.topic_dead_letter, "dead_letter")
    assert letters == [], "a failing store must never turn rows into dead letters"
    assert failures("bad_rows") == bad_before
