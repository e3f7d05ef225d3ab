"""Any Hugging Face sequence classifier as the sentiment model, its labels mapped to ours.

Configure ``TOUCHPOINT_SENTIMENT_MODEL`` (a local folder, or a hub id where the
machine can reach a hub) and, unless its labels are already called
negative/neutral/positive, ``TOUCHPOINT_SENTIMENT_LABEL_MAP`` (JSON, e.g.
``{"LABEL_0": "negative", "LABEL_1": "positive"}``). Several labels may map to
one class (their probabilities add up); a folder written by
`touchpoint train hf-sentiment` carries its own map. A class no label maps to has
probability 0, so two-class models work. The score stays P(pos) - P(neg).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from touchpoint.models.sentiment import LABELS, SentimentResult, results_from_probabilities

_ALIASES = {
    "negative": "negative", "neg": "negative", "bad": "negative",
    "neutral": "neutral", "neu": "neutral",
    "positive": "positive", "pos": "positive", "good": "positive",
}  # fmt: skip


def label_indices(id2label: dict[int, str], label_map: dict[str, str] | None) -> np.ndarray:
    """(num_model_labels,) index into LABELS for every model output; a clear error when unmappable."""
    indices = []
    for i in range(len(id2label)):
        name = id2label[i]
        target = (label_map or {}).get(name) or _ALIASES.get(name.lower())
        if target not in LABELS:
            raise ValueError(
                f"sentiment model label {name!r} maps to no class of {LABELS}: set TOUCHPOINT_SENTIMENT_LABEL_MAP, "
                f"e.g. '{{\"{name}\": \"negative\"}}' (model labels: {list(id2label.values())})"
            )
        indices.append(LABELS.index(target))
    return np.array(indices)


class HFSentiment:
    """Loaded once; batched, length-sorted, dynamically padded inference."""

    def __init__(
        self, name_or_path: str, label_map: dict[str, str] | None = None, *, max_tokens: int = 256,
        batch_size: int = 32, device: str | None = None,
    ) -> None:  # fmt: skip
        local = Path(name_or_path).is_dir()  # a folder loads offline; a hub id needs a reachable hub
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
        self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path, local_files_only=local)
        self.model = self.model.to(self.device).eval()
        saved_map = Path(name_or_path) / "touchpoint_label_map.json"  # written by models/hf_export.py
        if label_map is None and local and saved_map.is_file():
            label_map = json.loads(saved_map.read_text())
        self.map = label_indices({int(k): v for k, v in self.model.config.id2label.items()}, label_map)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.version = f"hf:{Path(name_or_path).name if local else name_or_path}"
        self.tuned = None  # runs its own network: the shared encoder stays the packaged one
        self.source_prior = None  # calibration unknown: brand priors are not applied

    def probabilities_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities over LABELS; empty texts give a uniform row."""
        out = np.full((len(texts), 3), 1 / 3, dtype=np.float32)
        order = sorted((i for i, t in enumerate(texts) if t and t.strip()), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            model_probs = self._batch([texts[i] for i in chunk])
            mapped = np.zeros((len(chunk), 3), dtype=np.float32)
            for j, target in enumerate(self.map):
                mapped[:, target] += model_probs[:, j]
            out[chunk] = mapped
        return out

    @torch.inference_mode()
    def _batch(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        logits = self.model(**batch.to(self.device)).logits
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def predict_texts(self, texts: Sequence[str], encoded: object = None, priors: object = None) -> list[SentimentResult]:
        """Same entry point as the packaged head; the shared sentence encoding and brand priors are not used."""
        return results_from_probabilities(self.probabilities_texts(texts))

    def unscored_reason(self, language: str) -> str | None:
        """A classifier the user chose is trusted in every language: they picked it for their streams."""
        return None
