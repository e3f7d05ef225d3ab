"""What closing the loop costs the worker, per batch, against what the worker already does.

    .venv/bin/python bench/routing.py [BATCHES]

Uses the bundled sample (400 texts) as enriched records (their enrichment is
irrelevant here: tagged round-robin, every other one negative, a quarter NPS
detractors) and the bundled example rules, then times per batch of 100:

* route: decode the enriched Avro, evaluate the rules, encode the actions
  (the route agent's work), against decoding alone (baseline: what every
  consumer of signals.enriched pays anyway);
* cases: ``record_actions`` in chdb (look up known actions and open cases,
  insert cases and actions), against inserting the same signals into the
  ``signals`` table (baseline: the sink's insert of that batch).

Prints medians and the ratios. Delivery is HTTP to other systems and is not
measured here (its pace is the destinations' rate limits).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Callable

from touchpoint.pipeline.cases import record_actions
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.rules import SignalFacts, load_rules, load_vocabulary
from touchpoint.pipeline.routing import action_record
from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import Store
from touchpoint.samples import sample_path
from touchpoint.schemas.codec import AvroCodec

TOUCHPOINTS = ("mobile_app", "delivery", "contact_center", "billing", "food_quality", "product_quality", "other")
BATCH = 100


def enriched_records(batch: int) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    lines = sample_path("demo_signals.jsonl").read_text(encoding="utf-8").splitlines()
    records = []
    for i in range(BATCH):
        source = json.loads(lines[(batch * BATCH + i) % len(lines)])
        negative = i % 2 == 0
        records.append({
            "signal_id": f"b{batch}-{i}", "source_id": source["id"], "kind": "direct" if source["channel"] == "survey" else "indirect",
            "channel": source["channel"], "source": source["source"], "brand": "bench", "customer_id": f"cust-{(batch * BATCH + i) % 150}",
            "author": None, "occurred_at": now, "ingested_at": now, "enriched_at": now, "text_redacted": source["text"],
            "score": {"metric": "nps", "value": 3.0, "scale_min": 0, "scale_max": 10} if i % 4 == 0 else None,
            "touchpoint_hint": None, "url": None, "attributes": {}, "pii_found": [], "language": "en",
            "sentiment_label": "negative" if negative else "positive", "sentiment_score": -0.8 if negative else 0.7,
            "emotions": ["anger"] if i % 6 == 0 else [], "touchpoints": [TOUCHPOINTS[i % len(TOUCHPOINTS)]],
            "journey_stage": "usage", "model_version": "bench",
        })  # fmt: skip
    return records


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(batches: int) -> None:
    rules = load_rules(sample_path("routing_rules.yaml"), load_vocabulary())
    enriched, actions_codec = AvroCodec.for_subject("enriched_signal"), AvroCodec.for_subject("action")
    decode_s, route_s, insert_s, record_s, routed = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"chdb://{folder}", "bench")
        store.migrate()
        for batch in range(batches):
            messages = [Incoming(None, enriched.encode(r), "signals.enriched", 0, i) for i, r in enumerate(enriched_records(batch))]
            seconds, decoded = timed(lambda: [enriched.decode(m.value) for m in messages])
            decode_s.append(seconds)

            def route() -> list[dict[str, Any]]:
                out = []
                for record in (enriched.decode(m.value) for m in messages):
                    facts = SignalFacts.from_record(record)
                    for r in rules.route(facts):
                        action = action_record(facts, r, rules.version)
                        actions_codec.encode(action)
                        out.append(action)
                return out

            seconds, actions = timed(route)
            route_s.append(seconds)
            routed += len(actions)
            insert_s.append(timed(lambda: store.insert_signals([signal_row(r) for r in decoded]))[0])
            record_s.append(timed(lambda: record_actions(store, actions))[0])
        store.close()
    med = statistics.median
    print(f"{batches} batches of {BATCH} signals; {routed} actions ({routed / batches / BATCH:.0%} of signals routed)")
    print(f"route per batch   {med(route_s) * 1000:7.1f} ms   decode only (baseline) {med(decode_s) * 1000:6.1f} ms   ratio {med(route_s) / med(decode_s):5.1f}x")
    print(f"cases per batch   {med(record_s) * 1000:7.1f} ms   signals insert (baseline) {med(insert_s) * 1000:6.1f} ms   ratio {med(record_s) / med(insert_s):5.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
