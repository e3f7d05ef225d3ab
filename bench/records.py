"""Per-record Python cost of a score-only signal's trip, today's code against the way it was before.

A signal without text never reaches a model (models/enricher.py), so its cost is
the per-record Python work around it: the connector's ``to_record`` and Avro
encode, the worker's decode, ``enriched_record`` and encode. The profile of the
score-only end-to-end run (issue 18) found two avoidable costs, measured here
against re-creations of the earlier code in the same run:

* fastavro ``validate(raise_errors=True)`` builds an error (and dumps the datum
  to JSON) for every union branch that does not match, even when another does;
  and the writer checks every value it writes anyway: the codec now writes at
  once and asks the validator for the reason only when the writer refused;
* ``dataclasses.asdict`` deep-copies every value; records are now built shallow.

Prints microseconds per record (median of rounds, interleaved) and the ratio.

    .venv/bin/python bench/records.py [--n 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Callable

import fastavro
from fastavro.validation import validate

from touchpoint.models.enricher import Enrichment
from touchpoint.pipeline.enrichment import RAW_ONLY_FIELDS, enriched_record
from touchpoint.schemas.codec import HEADER, MAGIC, AvroCodec
from touchpoint.schemas.signal import RawSignal, Score, kind_of, validate_record

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)
NO_TEXT = Enrichment(text_redacted=None, pii_found=[], language="und", sentiment_label=None, sentiment_score=None,
                     emotions=[], touchpoints=[], journey_stage="unknown")  # fmt: skip


def signals(n: int) -> list[RawSignal]:
    return [RawSignal(source="bench", source_id=f"r-{i}", channel="survey", brand="bench", occurred_at=WHEN,
                      score=Score("nps", i % 11, 0, 10), customer_id=f"c{i % 997}") for i in range(n)]  # fmt: skip


def encode_before(codec: AvroCodec, record: dict[str, Any]) -> bytes:
    """The codec's encode as it was: validation that builds every branch's error."""
    schema = codec._parsed[codec.version]
    validate(record, schema, raise_errors=True)
    buf = io.BytesIO()
    buf.write(HEADER.pack(MAGIC, codec.schema_id(codec.version)))
    fastavro.schemaless_writer(buf, schema, dict(record))
    return buf.getvalue()


def to_record_before(signal: RawSignal) -> dict[str, Any]:
    record = asdict(signal)
    record["kind"], record["signal_id"], record["text_sealed"] = kind_of(signal.channel), signal.signal_id, None
    validate_record(record)
    return record


def enriched_before(raw: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in raw.items() if k not in RAW_ONLY_FIELDS}
    record.update(asdict(NO_TEXT))
    record.update(primary_touchpoint=None, model_version="bench", enriched_at=datetime.now(timezone.utc))
    return record


def per_record_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw_codec, enriched_codec = AvroCodec.for_subject("raw_signal"), AvroCodec.for_subject("enriched_signal")
    sent = signals(args.n)
    raw = [raw_codec.decode(raw_codec.encode(s.to_record())) for s in sent]
    enriched = [enriched_record(r, NO_TEXT, "bench") for r in raw]
    steps: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "connector: to_record": (lambda: [s.to_record() for s in sent], lambda: [to_record_before(s) for s in sent]),
        "connector: Avro encode": (lambda: [raw_codec.encode(r) for r in raw],
                                   lambda: [encode_before(raw_codec, r) for r in raw]),
        "worker: enriched_record": (lambda: [enriched_record(r, NO_TEXT, "bench") for r in raw],
                                    lambda: [enriched_before(r) for r in raw]),
        "worker: Avro encode": (lambda: [enriched_codec.encode(r) for r in enriched],
                                lambda: [encode_before(enriched_codec, r) for r in enriched]),
    }  # fmt: skip
    times: dict[str, dict[str, list[float]]] = {name: {"now": [], "before": []} for name in steps}
    for round_no in range(args.rounds):
        for name, (now, before) in steps.items():
            order = [("now", now), ("before", before)] if round_no % 2 == 0 else [("before", before), ("now", now)]
            for label, fn in order:
                times[name][label].append(per_record_us(fn, args.n))
    print(f"{'step':28s} {'now µs':>8s} {'before µs':>10s} {'speed-up':>9s}")
    total_now = total_before = 0.0
    for name, measured in times.items():
        now, before = statistics.median(measured["now"]), statistics.median(measured["before"])
        total_now, total_before = total_now + now, total_before + before
        print(f"{name:28s} {now:8.1f} {before:10.1f} {before / now:8.2f}x")
    print(f"{'all four':28s} {total_now:8.1f} {total_before:10.1f} {total_before / total_now:8.2f}x")


if __name__ == "__main__":
    main()
