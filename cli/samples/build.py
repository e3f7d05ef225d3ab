"""Rebuild demo_signals.jsonl from the labelled sets that packages ship.

    python -m touchpoint.samples.build [DATA_DIR]

Texts come from the *test* split only (models/datasets.py), so the demo never
shows the sentiment head text it trained on. What is ours, not the source's:
the timestamps (spread evenly over 2026-09-01..2026-11-15), the brand name, and
the survey scores, derived from each text's human mean rating (see nps_from_rating).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from touchpoint.models import datasets

OUT = Path(__file__).with_name("demo_signals.jsonl")
START = datetime(2026, 9, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=75)
# (dataset, how many, channel, source)
PLAN = (
    ("vader_tweets", 120, "social", "x"),
    ("vader_amazon", 100, "review", "amazon"),
    ("uci_yelp", 100, "review", "yelp"),
    ("vader_amazon", 80, "survey", "survey_export"),
)


def nps_from_rating(rating: float) -> int:
    """Map a human mean rating on -4..+4 onto 0..10 linearly (0 -> 5)."""
    return max(0, min(10, round((rating + 4) * 10 / 8)))


def build(data_dir: Path) -> int:
    records, used = [], set()
    for dataset, count, channel, source in PLAN:
        rows = [r for r in datasets.load(dataset, data_dir, split="test") if r.text not in used and len(r.text) > 15]
        for row in rows[:: max(1, len(rows) // count)][:count]:
            used.add(row.text)
            record = {"id": f"{dataset}:{len(records)}", "channel": channel, "source": source, "text": row.text}
            if channel == "survey" and row.rating is not None:
                record["nps"] = nps_from_rating(row.rating)
            record["dataset"] = dataset
            records.append(record)
    for index, record in enumerate(records):
        record["occurred_at"] = (START + SPAN * ((index * 7919) % len(records)) / len(records)).strftime("%Y-%m-%dT%H:%M:%SZ")
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return len(records)


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else ".touchpoint/data")), "records written to", OUT)
