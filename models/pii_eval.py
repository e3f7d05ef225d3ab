"""Redaction recall and over-redaction on models/labels/pii_messages.jsonl (synthetic, written by the project).

Each message lists the PII items that must disappear and the look-alikes and
neighbouring words that must survive (see models/labels/README.md). The *dev*
part was used while writing the rules; `touchpoint eval` reports the *test*
part only.

* **recall**: an item counts as redacted when none of its identifying tokens
  (those with a digit; for items without digits, its words) is left in the output.
* **look-alikes kept**: share of listed ``keep`` strings found verbatim in the output.
* **words lost**: words outside every PII item that are missing from the output
  (placeholders that swallow neighbours show up here).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from touchpoint.models.pii import PiiRedactor

# The regions whose national formats appear in the set (a brand lists its own in `phone_regions`).
EVAL_PHONE_REGIONS = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "AU", "IN")
_TOKEN = re.compile(r"[\w'’+\-.@]+")
_NOT_IDENTIFYING = frozenset(
    "street st avenue ave road rd terrace lane drive apt flat rue de la du des avenue calle via de del "
    "at dot".split()
)


def pii_labels_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("labels", "pii_messages.jsonl")))


def load_messages(part: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    file = path or pii_labels_path()
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if part is None or r["part"] == part]


def _identifying(value: str) -> list[str]:
    tokens = [t.strip(".,-") for t in _TOKEN.findall(value)]
    with_digits = [t for t in tokens if any(c.isdigit() for c in t)]
    return with_digits or [t for t in tokens if len(t) > 1 and t.lower() not in _NOT_IDENTIFYING]


def _survives(token: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(token)}(?![\w])", text) is not None


def _words(text: str) -> Counter[str]:
    return Counter(w for w in re.findall(r"[^\W_]+", text.lower()))


def evaluate_redaction(redactor: PiiRedactor, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Recall per kind, look-alikes kept, words lost; with the misses, so a reader can see why."""
    found, total = Counter(), Counter()
    kept = keep_total = lost_words = other_words = 0
    misses, damaged = [], []
    for row in rows:
        out = redactor.redact(row["text"]).text
        for item in row["pii"]:
            total[item["kind"]] += 1
            if any(_survives(t, out) for t in _identifying(item["value"])):
                misses.append((item["kind"], item["value"], out))
            else:
                found[item["kind"]] += 1
        for keep in row["keep"]:
            keep_total += 1
            if keep in out:
                kept += 1
            else:
                damaged.append((keep, out))
        outside = row["text"]
        for item in row["pii"]:
            outside = outside.replace(item["value"], " ")
        expected = _words(outside)
        lost_words += sum((expected - _words(out)).values())
        other_words += sum(expected.values())
    return {
        "messages": len(rows),
        "items": sum(total.values()),
        "recall": sum(found.values()) / max(1, sum(total.values())),
        "recall_by_kind": {k: (found[k], total[k]) for k in sorted(total)},
        "lookalikes_kept": kept / max(1, keep_total),
        "lookalikes": keep_total,
        "words_lost": lost_words,
        "words_outside_pii": other_words,
        "misses": misses,
        "damaged": damaged,
    }


def evaluate_pii(part: str = "test") -> dict[str, Any]:
    """The card's numbers: the configured-regions redactor, and the US-only default for comparison."""
    rows = load_messages(part)
    regional = evaluate_redaction(PiiRedactor("US", phone_regions=EVAL_PHONE_REGIONS), rows)
    default = evaluate_redaction(PiiRedactor("US"), rows)
    return {"regions": EVAL_PHONE_REGIONS, "part": part, "with_regions": regional, "us_only": default}
