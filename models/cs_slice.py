"""A customer-service-like evaluation slice, selected from held-out packaged data by fixed rules.

Real customer-service text fails a sentiment model in known ways: complaints
stated as facts with no negative word, sarcasm (positive words, negative
meaning), and polite requests read as positive. The packaged labelled sets
hold such texts too; this module selects them by rules that look only at the
gold label and at what the VADER lexicon finds in the text, never at any
model's output, and never by hand:

* ``complaint_no_negative_word``: gold negative, and VADER finds no negative
  word in it (its ``neg`` share is 0, negation handling included).
* ``positive_words_negative_meaning``: gold negative, and VADER's compound is
  >= 0.05 (the words read positive: sarcasm, irony, "thanks for nothing").
* ``request_or_question``: the text asks for something (a question mark or a
  request form in :data:`REQUEST`), whatever its gold label.
* ``negative_words_not_negative`` (the control): gold neutral or positive, and
  VADER's compound is <= -0.05. Without it the slice would hold almost only
  negatives, and a model that calls more texts negative would win it.

Texts come from the *test* split (never trained on) of the sets closest to
customer service: tweets, Amazon review snippets, Amazon and Yelp sentences.
By construction VADER is wrong on every text of the first, second and fourth
groups; it is shown anyway as the lexicon reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from touchpoint.models import datasets
from touchpoint.models.sentiment import _vader

SLICE_SETS = ("vader_tweets", "vader_amazon", "uci_amazon", "uci_yelp")
GROUPS = (
    "complaint_no_negative_word", "positive_words_negative_meaning", "request_or_question",
    "negative_words_not_negative",
)  # fmt: skip
REQUEST = re.compile(
    r"\?|\b(please|pls|plz|could you|can you|would you|will you|can someone|can anyone|can i|how do i|how can i|"
    r"help me|let me know|any update|kindly|i need|we need|i would like|i'd like)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SliceText:
    dataset: str
    text: str
    label: str
    groups: tuple[str, ...]


def groups_of(text: str, label: str) -> tuple[str, ...]:
    """The slice groups a labelled text falls in (empty: not in the slice)."""
    scores = _vader().polarity_scores(text)
    found = []
    if label == "negative" and scores["neg"] == 0:
        found.append("complaint_no_negative_word")
    if label == "negative" and scores["compound"] >= 0.05:
        found.append("positive_words_negative_meaning")
    if REQUEST.search(text):
        found.append("request_or_question")
    if label != "negative" and scores["compound"] <= -0.05:
        found.append("negative_words_not_negative")
    return tuple(found)


def build_slice(data_dir: Path) -> list[SliceText]:
    """Every test-split text of :data:`SLICE_SETS` that one of the rules selects, in file order."""
    selected = []
    for name in SLICE_SETS:
        for row in datasets.load(name, data_dir, split="test"):
            groups = groups_of(row.text, row.label)
            if groups:
                selected.append(SliceText(name, row.text, row.label, groups))
    return selected
