"""Kafka (real broker) -> real Faust worker -> ClickHouse (chdb): the spine, end to end."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from tests.polling import wait_for
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.testing import read_topic
from touchpoint.core.kafka import client_options
from touchpoint.core.settings import Settings
from touchpoint.pipeline.queries import metric_by
from touchpoint.pipeline.runtime import running_worker
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def survey(source_id: str, text: str, nps: int) -> RawSignal:
    return RawSignal(
        source="typeform", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN,
        text=text, score=Score("nps", nps, 0, 10), customer_id="cust-7",
    )  # fmt: skip


async def produce(settings: Settings, *signals: RawSignal) -> None:
    async with SignalProducer(settings) as producer:
        await asyncio.gather(*[await producer.send(s) for s in signals])


async def stored_rows(app, sql: str, params: dict | None = None) -> list[dict]:
    store = app.touchpoint["reader"]
    return await store.query(sql, params)


async def dead_letters(settings: Settings, expected: int) -> list[dict]:
    """The dead letters (original bytes opened), once at least ``expected`` are there."""

    async def enough() -> list[dict] | None:
        letters = [letter for _, letter in await read_topic(settings, settings.topic_dead_letter, "dead_letter")]
        return letters if len(letters) >= expected else None

    return await wait_for(enough)


async def test_signal_flows_enriched_into_clickhouse_and_counts_once(live_settings: Settings, enricher) -> None:
    signal = survey("resp-1", "The courier left my parcel in the rain and it arrived soaked. Awful.", 2)
    async with running_worker(live_settings, enricher) as app:
        await produce(live_settings, signal)
        sql = "SELECT * FROM {db}.signals FINAL WHERE signal_id = {id:String}"
        [row] = await wait_for(lambda: stored_rows(app, sql, {"id": signal.signal_id}))
        assert row["sentiment_label"] == "negative" and row["sentiment_score"] < 0
        assert "delivery" in row["touchpoints"] and row["journey_stage"] == "delivery_onboarding"
        assert row["language"] == "en" and row["customer_id"] == "cust-7"
        assert row["score_metric"] == "nps" and row["score_value"] == 2
        assert row["text_redacted"].startswith("The courier")

        await produce(live_settings, signal)  # the same signal again (re-import)
        await produce(live_settings, survey("resp-2", "Quick delivery, thanks!", 10))
        await wait_for(lambda: stored_rows(app, "SELECT 1 FROM {db}.signals WHERE source_id = 'resp-2'"))
        await wait_for(lambda: stored_rows(app, "SELECT 1 FROM {db}.signals HAVING count() >= 3"))
        nps = await app.touchpoint["reader"].call(metric_by, "nps", "brand")
        assert nps[0]["n"] == 2  # stored three times, counted twice: once per signal
        assert nps[0]["nps"] == 0.0  # one promoter, one detractor

        # written for this test: a comment in a language the sentiment model cannot read (issue 13)
        french = survey("resp-3", "Le colis est arrivé trempé et en retard, et personne ne répond au téléphone.", 3)
        await produce(live_settings, french)
        [row] = await wait_for(lambda: stored_rows(app, sql, {"id": french.signal_id}))
        assert row["language"] == "fr" and row["sentiment_label"] == "unknown" and row["sentiment_score"] is None
        assert row["sentiment_reason"].startswith("language fr:")
        [sentiment] = await app.touchpoint["reader"].call(metric_by, "sentiment", "brand")
        assert sentiment["unscored"] == 1 and sentiment["n"] == 2  # left out of net sentiment, counted apart


async def test_malformed_record_is_dead_lettered_and_the_next_one_flows(live_settings: Settings, enricher) -> None:
    good = survey("resp-3", "The promo code did not work at checkout", 4)
    invalid = RawSignal(source="typeform", source_id="resp-4", channel="survey", brand="acme", occurred_at=WHEN, text="x")
    codec = AvroCodec.for_subject("raw_signal")
    invalid_bytes = codec.encode({**invalid.to_record(), "score": {"metric": "nps", "value": 42.0, "scale_min": 0, "scale_max": 10}})
    async with running_worker(live_settings, enricher) as app:
        producer = AIOKafkaProducer(**client_options(live_settings), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(live_settings.topic_raw, b'{"not": "avro"}', key=b"k1")
            await producer.send_and_wait(live_settings.topic_raw, invalid_bytes, key=b"k1")
        finally:
            await producer.stop()
        await produce(live_settings, good)
        sql = "SELECT touchpoints FROM {db}.signals FINAL WHERE signal_id = {id:String}"
        [row] = await wait_for(lambda: stored_rows(app, sql, {"id": good.signal_id}))
        assert "checkout" in row["touchpoints"]
    letters = await dead_letters(live_settings, expected=2)
    by_stage = {letter["stage"]: letter for letter in letters}
    assert set(by_stage) == {"decode", "validate"}
    assert by_stage["decode"]["payload"] == b'{"not": "avro"}'
    assert "Touchpoint connector" in by_stage["decode"]["reason"]
    assert "outside its scale" in by_stage["validate"]["reason"]
    assert by_stage["validate"]["source_topic"] == live_settings.topic_raw
    assert by_stage["validate"]["key"] == b"k1"


async def test_offsets_commit_only_after_the_store_took_the_rows(live_settings: Settings, enricher) -> None:
    """An insert that blows up must leave its offsets uncommitted, so the next worker stores the row.

    Faust's take_events acks a batch in a `finally`, even when the body raised;
    without touchpoint.pipeline.acks.HeldBatch the periodic commit would then skip the row.
    """
    signal = survey("resp-5", "Billing charged me after I cancelled", 1)
    async with running_worker(live_settings, enricher) as app:
        sink = app.touchpoint["sink"]

        async def insert_crashes(rows):
            raise RuntimeError("unexpected failure inside the insert (test)")

        sink.store.insert_signals = insert_crashes
        await produce(live_settings, signal)
        await asyncio.sleep(4)  # enriched, sink crashed on it; offsets are committed every second
    async with running_worker(live_settings, enricher) as app:
        sql = "SELECT signal_id FROM {db}.signals FINAL WHERE signal_id = {id:String}"
        assert await wait_for(lambda: stored_rows(app, sql, {"id": signal.signal_id}), timeout_s=30)


async def test_a_failing_batch_is_retried_in_place_not_stepped_over(live_settings: Settings, enricher) -> None:
    """A batch whose body raises is tried again until it succeeds; commits never skip it, no restart needed."""
    settings = live_settings.with_overrides(store_retry_initial_s=0.2, store_retry_max_s=0.5)
    before = REGISTRY.get_sample_value("touchpoint_batch_retries_total", {"agent": "enrich_batch"}) or 0.0
    first, second = survey("resp-r1", "The app crashed at checkout", 1), survey("resp-r2", "Lovely staff", 10)
    async with running_worker(settings, enricher) as app:
        stage = app.touchpoint["enrich"]
        real_process, calls = stage.process, []

        async def fails_twice(messages, *args):  # an unexpected bug in the stage, twice, then fixed
            calls.append(len(messages))
            if len(calls) <= 2:
                raise RuntimeError("unexpected failure inside the enrich stage (test)")
            return await real_process(messages, *args)

        stage.process = fails_twice
        await produce(settings, first)
        status = app.touchpoint["batches"]["enrich"]
        await wait_for(lambda: _async(not status.ok or len(calls) > 2))
        sql = "SELECT signal_id FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)}"
        await produce(settings, second)  # the partition goes on after the retried batch
        rows = await wait_for(lambda: _stored_both(app, sql, [first.signal_id, second.signal_id]))
        assert {r["signal_id"] for r in rows} == {first.signal_id, second.signal_id}
        assert status.ok and status.failures == 2
    after = REGISTRY.get_sample_value("touchpoint_batch_retries_total", {"agent": "enrich_batch"})
    assert after - before == 2


async def _async(value):
    return value


async def _stored_both(app, sql: str, ids: list[str]) -> list[dict] | None:
    rows = await stored_rows(app, sql, {"ids": ids})
    return rows if len(rows) == len(ids) else None


async def test_batches_in_flight_commit_in_order_a_failing_one_holds_back_those_after_it(live_settings: Settings, enricher) -> None:
    """Rule 4 of pipeline/acks.py: the batches after a failing one are processed (their outputs flow), but
    the partition's committed offset does not pass the failing batch until it succeeded."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    settings = live_settings.with_overrides(
        enrich_take_size=1, enrich_batches_in_flight=3, topic_partitions=1, store_retry_initial_s=0.2,
        store_retry_max_s=0.3, commit_interval_s=0.2,
    )  # fmt: skip
    signals = [survey(f"resp-o{i}", text, 5) for i, text in enumerate(["Late parcel", "Great app", "Rude agent"])]
    fixed = asyncio.Event()
    placed = []  # (partition, offset) of each signal, as the broker acknowledged it

    async def committed() -> int | None:
        consumer = AIOKafkaConsumer(**client_options(settings), group_id=settings.app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            return await consumer.committed(TopicPartition(settings.topic_raw, placed[0][0]))
        finally:
            await consumer.stop()

    async with running_worker(settings, enricher) as app:
        stage = app.touchpoint["enrich"]
        real_process = stage.process

        async def first_fails_until_fixed(messages, *args):
            if (messages[0].partition, messages[0].offset) == placed[0] and not fixed.is_set():
                raise RuntimeError("the first batch fails until the test fixes it")
            return await real_process(messages, *args)

        stage.process = first_fails_until_fixed
        async with SignalProducer(settings) as producer:  # one at a time: three batches of one, in this order
            for signal in signals:
                meta = await (await producer.send(signal))
                placed.append((meta.partition, meta.offset))
        assert len({p for p, _ in placed}) == 1, "one customer: one partition"
        sql = "SELECT signal_id FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)}"
        later = [s.signal_id for s in signals[1:]]
        await wait_for(lambda: _stored_both(app, sql, later))  # the batches behind the failing one went through
        await asyncio.sleep(1.0)  # several commit intervals
        assert (await committed() or 0) <= placed[0][1], "an offset was committed past the batch that has not succeeded"
        fixed.set()
        await wait_for(lambda: _stored_both(app, sql, [s.signal_id for s in signals]))
        await wait_for(lambda: _committed_all(committed, placed[-1][1] + 1))


async def _committed_all(committed, n: int) -> bool | None:
    return True if (await committed() or 0) >= n else None
