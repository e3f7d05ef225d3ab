from datetime import datetime, timezone

import pytest

from touchpoint.schemas.codec import SUBJECT_CODES, AvroCodec, DecodeError, EncodeError, load_schema_files
from touchpoint.schemas.signal import RawSignal, Score

SHIPPED = load_schema_files("raw_signal")
CURRENT = max(SHIPPED)  # the newest version this release writes
V1 = SHIPPED[CURRENT]
# What a future release would add: the newest schema plus one appended optional field.
V2 = {**V1, "fields": [*V1["fields"], {"name": "source_language", "type": ["null", "string"], "default": None}]}


def signal_record() -> dict:
    return RawSignal(
        source="typeform", source_id="resp-1", channel="survey", brand="acme",
        occurred_at=datetime(2026, 11, 2, 10, 15, tzinfo=timezone.utc),
        text="Checkout kept failing", score=Score("nps", 3, 0, 10),
        ingested_at=datetime(2026, 11, 2, 10, 16, tzinfo=timezone.utc),  # Avro keeps milliseconds
    ).to_record()  # fmt: skip


@pytest.mark.parametrize("subject", sorted(SUBJECT_CODES))
def test_every_subject_has_a_schema_that_parses(subject: str) -> None:
    assert AvroCodec.for_subject(subject).version >= 1


def test_round_trip_keeps_every_field() -> None:
    codec = AvroCodec.for_subject("raw_signal")
    record = signal_record()
    decoded = codec.decode(codec.encode(record))
    assert decoded == record


def test_message_carries_writer_version() -> None:
    new_writer = AvroCodec("raw_signal", {CURRENT: V1, CURRENT + 1: V2})
    data = new_writer.encode({**signal_record(), "source_language": "en"})
    assert new_writer.writer_version(data) == CURRENT + 1
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 1000 + CURRENT + 1


def test_old_reader_reads_new_writer() -> None:
    new_writer = AvroCodec("raw_signal", {CURRENT: V1, CURRENT + 1: V2})
    old_reader = AvroCodec("raw_signal", {CURRENT: V1})
    data = new_writer.encode({**signal_record(), "source_language": "en"})
    decoded = old_reader.decode(data)
    assert decoded == signal_record()
    assert "source_language" not in decoded


def test_new_reader_reads_old_writer() -> None:
    old_writer = AvroCodec("raw_signal", {CURRENT: V1})
    new_reader = AvroCodec("raw_signal", {CURRENT: V1, CURRENT + 1: V2})
    decoded = new_reader.decode(old_writer.encode(signal_record()))
    assert decoded["source_language"] is None
    assert decoded["text"] == "Checkout kept failing"


@pytest.mark.parametrize("subject", sorted(SUBJECT_CODES))
def test_versions_only_append_optional_fields(subject: str) -> None:
    versions = load_schema_files(subject)
    chain = [versions[v] for v in sorted(versions)] + ([V2] if subject == "raw_signal" else [])
    for old, new in zip(chain, chain[1:]):
        old_fields, new_fields = old["fields"], new["fields"]
        assert [f["name"] for f in new_fields[: len(old_fields)]] == [f["name"] for f in old_fields]
        assert all("default" in f for f in new_fields[len(old_fields) :])


def test_garbage_and_foreign_messages_raise_decode_error() -> None:
    codec = AvroCodec.for_subject("raw_signal")
    with pytest.raises(DecodeError, match="too short"):
        codec.decode(b"{}")
    with pytest.raises(DecodeError, match="not a raw_signal"):
        codec.decode(b'{"text": "json, not avro"}')
    enriched = AvroCodec.for_subject("enriched_signal")
    with pytest.raises(DecodeError, match="not a enriched_signal"):
        enriched.decode(codec.encode(signal_record()))
    with pytest.raises(DecodeError, match="corrupt"):
        codec.decode(codec.encode(signal_record())[:12])


def test_encode_rejects_records_that_break_the_schema() -> None:
    codec = AvroCodec.for_subject("raw_signal")
    with pytest.raises(EncodeError):
        codec.encode({**signal_record(), "channel": "carrier-pigeon"})


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"brand": 5}, "brand"),
        ({"occurred_at": "2026-01-01"}, "occurred_at"),
        ({"score": {"metric": "nps", "value": 1.0}}, "score"),
        ({"pii_found": [1]}, "pii_found"),
        ({"touchpoints": "checkout"}, "'touchpoints' is an array"),  # fastavro's writer alone would write 8 letters
    ],
)
def test_encode_names_the_field_that_does_not_fit(change: dict, names: str) -> None:
    codec = AvroCodec.for_subject("enriched_signal")
    record = codec.decode(codec.encode(enriched_v1_record()))
    with pytest.raises(EncodeError, match=names):
        codec.encode({**record, **change})


def test_every_shipped_array_is_a_top_level_field() -> None:
    """The codec checks top-level arrays for strings (the writer would iterate one); no schema nests one deeper."""

    def nested_arrays(kind: object, depth: int) -> int:
        if isinstance(kind, list):
            return sum(nested_arrays(k, depth) for k in kind)
        if not isinstance(kind, dict):
            return 0
        here = int(kind.get("type") == "array" and depth > 1)
        inner = [f["type"] for f in kind.get("fields", [])] + [kind.get("items"), kind.get("values")]
        return here + sum(nested_arrays(k, depth + (kind.get("type") == "record")) for k in inner if k is not None)

    for subject in SUBJECT_CODES:
        for version, schema in load_schema_files(subject).items():
            assert nested_arrays(schema, 0) == 0, f"{subject} v{version}"
    assert nested_arrays({"type": "record", "fields": [{"name": "s", "type": {"type": "record", "fields": [
        {"name": "a", "type": {"type": "array", "items": "string"}}]}}]}, 0) == 1  # fmt: skip  # negative control


def enriched_v1_record() -> dict:
    """An enriched signal as a v1 enrich stage wrote it (fields of schemas/avro/enriched_signal.v1.avsc; -0.75 is exact in float32)."""
    record = {k: v for k, v in signal_record().items() if k not in ("text", "text_sealed")}
    record.update(
        touchpoint_hint="checkout", text_redacted="Checkout kept failing", pii_found=[], language="en",
        sentiment_label="negative", sentiment_score=-0.75, emotions=["frustration"], touchpoints=["checkout", "payment"],
        journey_stage="purchase", model_version="test", enriched_at=datetime(2026, 11, 2, 10, 17, tzinfo=timezone.utc),
    )  # fmt: skip
    return record


def test_enriched_v2_carries_the_primary_touchpoint_both_ways() -> None:
    """v2 appends primary_touchpoint: a v1 reader skips it, a v2 reader reads v1 messages with null."""
    versions = load_schema_files("enriched_signal")
    new = AvroCodec("enriched_signal", {1: versions[1], 2: versions[2]})
    old = AvroCodec("enriched_signal", {1: versions[1]})
    data = new.encode({**enriched_v1_record(), "primary_touchpoint": "checkout"})
    assert new.writer_version(data) == 2 and new.decode(data)["primary_touchpoint"] == "checkout"
    assert old.decode(data) == enriched_v1_record()
    assert new.decode(old.encode(enriched_v1_record())) == {**enriched_v1_record(), "primary_touchpoint": None}


def test_enriched_v3_carries_the_sentiment_reason_both_ways() -> None:
    """v3 appends sentiment_reason: v1 and v2 readers skip it, a v3 reader reads v1 and v2 messages with null."""
    versions = load_schema_files("enriched_signal")
    new = AvroCodec("enriched_signal", versions)
    v2 = AvroCodec("enriched_signal", {1: versions[1], 2: versions[2]})
    v1 = AvroCodec("enriched_signal", {1: versions[1]})
    reason = "language fr: sentiment accuracy 0.55 on packaged data, below 0.80"
    unknown = {**enriched_v1_record(), "language": "fr", "sentiment_label": "unknown", "sentiment_score": None}
    data = new.encode({**unknown, "primary_touchpoint": "checkout", "sentiment_reason": reason})
    assert new.writer_version(data) == 3
    assert new.decode(data) == {**unknown, "primary_touchpoint": "checkout", "sentiment_reason": reason}
    assert v2.decode(data) == {**unknown, "primary_touchpoint": "checkout"}
    assert v1.decode(data) == unknown
    from_v2 = new.decode(v2.encode({**enriched_v1_record(), "primary_touchpoint": "checkout"}))
    assert from_v2 == {**enriched_v1_record(), "primary_touchpoint": "checkout", "sentiment_reason": None}
    from_v1 = new.decode(v1.encode(enriched_v1_record()))
    assert from_v1 == {**enriched_v1_record(), "primary_touchpoint": None, "sentiment_reason": None}
