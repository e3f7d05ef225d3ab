"""The metrics move when the real stages run (real models, real chdb), and label values stay bounded."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import REGISTRY

from touchpoint.core import metrics
from touchpoint.core.sealing import Sealer
from touchpoint.core.settings import Settings
from touchpoint.pipeline.enrichment import EnrichStage, Incoming, models_for
from touchpoint.pipeline.sink import SinkStage
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def raw(source_id: str, text: str) -> Incoming:
    signal = RawSignal(
        source="typeform", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN,
        text=text, score=Score("nps", 9, 0, 10),
    )  # fmt: skip
    value = AvroCodec.for_subject("raw_signal").encode(signal.to_record())
    return Incoming(None, value, "t.raw", 0, 1)


def test_status_and_reason_classes_are_bounded() -> None:
    assert [metrics.status_class(s) for s in (200, 302, 429, 503, None, 99)] == ["2xx", "3xx", "4xx", "5xx", "error", "error"]
    assert metrics.reason_class("decode", "DecodeError") == "undecodable"
    assert metrics.reason_class("validate", "InvalidSignal") == "invalid"
    assert metrics.reason_class("store", "StoreError") == "rejected_by_store"
    assert metrics.reason_class("enrich", "RuntimeError") == "enrichment_error"
    assert metrics.reason_class("connector.parse", "KeyError") == "undecodable"
    assert metrics.reason_class("nowhere", "Whatever") == "other"
    for stage in ("connector.parse", "connector.validate", "decode", "validate", "enrich", "store"):
        assert metrics.reason_class(stage, "AnyError") in metrics.REASON_CLASSES


def test_lag_is_highwater_minus_committed() -> None:
    assert metrics.lag_by_partition({"a": 10, "b": 5, "c": None}, {"a": 7, "b": None}) == {"a": 3, "b": 5}


async def test_enrich_and_sink_stages_move_their_metrics(enricher, store: Store, settings: Settings) -> None:
    before = {name: sample(name) for name in (
        "touchpoint_enrich_events_in_total", "touchpoint_enrich_texts_truncated_total",
        "touchpoint_enrich_inference_seconds_count", "touchpoint_sink_rows_inserted_total",
        "touchpoint_end_to_end_seconds_count",
        "touchpoint_sink_insert_batches_total",
    )}  # fmt: skip
    decode_failures = sample("touchpoint_enrich_failures_total", stage="decode")
    long_text = "The parcel arrived late and the box was damaged. " * 60  # far over 256 tokens
    stage = EnrichStage(models_for(settings, enricher), Sealer.from_settings(settings))
    result = await stage.process([raw("m1", long_text), raw("m2", "Great service"), Incoming(None, b"junk", "t.raw", 0, 2)])
    assert len(result.outputs) == 2 and len(result.dead_letters) == 1
    assert sample("touchpoint_enrich_events_in_total") - before["touchpoint_enrich_events_in_total"] == 3
    assert sample("touchpoint_enrich_texts_truncated_total") - before["touchpoint_enrich_texts_truncated_total"] == 1
    assert sample("touchpoint_enrich_inference_seconds_count") - before["touchpoint_enrich_inference_seconds_count"] == 1
    assert sample("touchpoint_enrich_failures_total", stage="decode") - decode_failures == 1
    build = [s for s in REGISTRY.collect() if s.name == "touchpoint_build_info"][0].samples
    assert build[0].labels["model_version"] == enricher.version

    async_store = AsyncStore(store.url, store.database)
    sink = SinkStage(async_store)
    enriched = [Incoming(None, value, "t.enriched", 0, i) for i, (_, value) in enumerate(result.outputs)]
    dead = await sink.process([*enriched, enriched[0]])  # m1 twice in one batch
    assert dead == []
    assert sample("touchpoint_sink_rows_inserted_total") - before["touchpoint_sink_rows_inserted_total"] == 3
    assert sample("touchpoint_sink_insert_batches_total") - before["touchpoint_sink_insert_batches_total"] == 1
    assert sample("touchpoint_end_to_end_seconds_count") - before["touchpoint_end_to_end_seconds_count"] == 3
