"""On-disk cache of encoder outputs for training and evaluation, keyed by the text set.

Embedding thousands of labelled texts is the slow part of every experiment on
a CPU; the cache makes it happen once per (encoder, max_tokens, texts). Only
offline tools use it; the streaming enricher always embeds live.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.encoder import Encoded, SentenceEncoder  # or an OnnxEncoder: same interface


def cache_key(encoder: SentenceEncoder, texts: Sequence[str]) -> str:
    tuned = f"|tuned={encoder.tuned_id}" if encoder.tuned_id else ""
    # an ONNX encoder's features differ (int8) or may (fp32); torch keys stay as they were before backends
    backend = "" if encoder.backend == "torch" else f"|{encoder.backend}"
    digest = hashlib.sha256(f"{Path(encoder.path).name}|{encoder.max_tokens}|v2{tuned}{backend}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", errors="replace") + b"\x00")
    return digest.hexdigest()[:24]


def encode_cached(encoder: SentenceEncoder, texts: Sequence[str], cache_dir: Path | None) -> Encoded:
    """``encoder.encode_rich(texts)``, read from ``cache_dir`` when this exact text list was seen."""
    if cache_dir is None:
        return encoder.encode_rich(texts)
    file = cache_dir / f"enc-{cache_key(encoder, texts)}.npz"
    if file.is_file():
        data = np.load(file)
        return Encoded(data["sentence"], data["layer_means"].astype(np.float32), data["last_max"].astype(np.float32))
    encoded = encoder.encode_rich(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(
        tmp, sentence=encoded.sentence, layer_means=encoded.layer_means.astype(np.float16),
        last_max=encoded.last_max.astype(np.float16),
    )  # fmt: skip
    tmp.replace(file)
    return encoded
