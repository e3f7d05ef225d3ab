"""Per-record Python cost of a score-only signal's trip, today's code against the way it was before.

A signal without text never reaches a model (models/enricher.py), so its cost is
the per-record Python work around it. The profile of the score-only end-to-end
run (issue 18) found ``dataclasses.asdict`` deep-copying every record (the
connector's ``to_record``, the worker's ``enriched_record``); records are now
built shallow. Measured here against re-creations of the earlier code in the
same run. (fastavro's ``validate(raise_errors=True)`` is the other large cost: it
builds and JSON-dumps an error for every non-matching union branch; a quiet
check first was tried and reverted, see the README.)

Prints microseconds per record (median of rounds, interleaved) and the ratio.

    .venv/bin/python bench/records.py [--n 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Callable

from touchpoint.models.enricher import Enrichment
from touchpoint.pipeline.enrichment import RAW_ONLY_FIELDS, enriched_record
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score, kind_of, validate_record

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)
NO_TEXT = Enrichment(text_redacted=None, pii_found=[], language="und", sentiment_label=None, sentiment_score=None,
                     emotions=[], touchpoints=[], journey_stage="unknown")  # fmt: skip


def signals(n: int) -> list[RawSignal]:
    return [RawSignal(source="bench", source_id=f"r-{i}", channel="survey", brand="bench", occurred_at=WHEN,
                      score=Score("nps", i % 11, 0, 10), customer_id=f"c{i % 997}") for i in range(n)]  # fmt: skip


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
    raw_codec = AvroCodec.for_subject("raw_signal")
    sent = signals(args.n)
    raw = [raw_codec.decode(raw_codec.encode(s.to_record())) for s in sent]
    steps: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "connector: to_record": (lambda: [s.to_record() for s in sent], lambda: [to_record_before(s) for s in sent]),
        "worker: enriched_record": (lambda: [enriched_record(r, NO_TEXT, "bench") for r in raw],
                                    lambda: [enriched_before(r) for r in raw]),
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
    print(f"{'both':28s} {total_now:8.1f} {total_before:10.1f} {total_before / total_now:8.2f}x")


if __name__ == "__main__":
    main()
