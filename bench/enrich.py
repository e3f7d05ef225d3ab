"""Enrichment throughput: texts/s for the default model and the VADER lexicon, same run.

    .venv/bin/python bench/enrich.py [N]

Prints a ratio (model / lexicon) so results compare across noisy machines.
"""

from __future__ import annotations

import json
import sys
import time

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connectors.samples import sample_path
from models.enricher import Enricher


def main(n: int = 400) -> None:
    texts = [json.loads(line)["text"] for line in sample_path("demo_signals.jsonl").read_text().splitlines()][:n]
    enricher = Enricher()
    enricher.enrich(texts[:32])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), 32):
        enricher.enrich(texts[i : i + 32])
    model_rate = len(texts) / (time.perf_counter() - start)
    vader = SentimentIntensityAnalyzer()
    start = time.perf_counter()
    for text in texts:
        vader.polarity_scores(text)
    lexicon_rate = len(texts) / (time.perf_counter() - start)
    print(f"texts: {len(texts)}")
    print(f"default enricher (MiniLM + heads + PII + language): {model_rate:8.1f} texts/s")
    print(f"VADER lexicon baseline:                             {lexicon_rate:8.1f} texts/s")
    print(f"ratio model/lexicon: {model_rate / lexicon_rate:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
