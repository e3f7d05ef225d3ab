"""Fine-tune the packaged encoder end to end for sentiment, on a CPU, deterministically.

What is trained: the top ``tuned_layers`` transformer layers of all-MiniLM-L6-v2
and a linear head on pooled features of the last layer. The layers below stay
frozen, so their output for every training text is computed once (and cached);
a step runs only the top layers forward and backward.

Why a second loss (self-distillation): the enricher runs one encoder pass per
text and every head reads it; emotions and touchpoints compare the sentence
vector with prototypes. ``distill_weight`` * (1 - cosine(new sentence vector,
frozen encoder's sentence vector)) keeps that vector where those heads expect
it, so the fine-tuned layers *replace* the packaged ones in the single pass.

Determinism: the data comes sorted, batch order and dropout come from one
seeded generator, torch runs with deterministic algorithms, and the frozen
states are rounded to float16 whether computed or read from the cache. The
same machine and thread count give the same bytes.
"""

from __future__ import annotations

import copy
import hashlib
import io
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from touchpoint.models.encoder import SentenceEncoder, masked_max, masked_mean
from touchpoint.models.sentiment import vader_features

SEED = 13
LAYER_PREFIX = "encoder.layer."


@dataclass(frozen=True)
class FinetuneConfig:
    """One way to fine-tune; the defaults are the approach chosen on validation (models/train.py)."""

    name: str = "fine-tune top 3 layers, head on layers 4-6 + max-pool + VADER, self-distillation 3"
    tuned_layers: int = 3
    epochs: int = 3
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    distill_weight: float = 3.0
    # blocks of sentiment.feature_matrix the head reads; only the last layer's mean is held by self-distillation,
    # so layers 4 and 5 (also tuned) carry sentiment freely
    features: tuple[str, ...] = ("layer:4", "layer:5", "layer:6", "last_max", "vader")
    set_weights: tuple[tuple[str, float], ...] = (("vader_tweets", 2.0), ("vader_movies", 0.5))
    balanced: bool = True  # inverse class frequency (after set weights)
    max_tokens: int = 128  # 3 of 16,350 training texts are longer


@dataclass
class Examples:
    """Labelled texts in a fixed order: the set each came from and its class index."""

    sets: list[str]
    texts: list[str]
    y: np.ndarray


@dataclass
class FrozenStates:
    """The frozen encoder's output for each text: token states entering the tuned layers, and the
    sentence vector the tuned encoder must stay close to."""

    start: int  # index into hidden_states: 0 = embeddings, 6 = last layer
    states: list[torch.Tensor]  # per text (tokens, dim), float16-rounded
    sentence: torch.Tensor  # (n, dim) unit vectors


def seed_everything(seed: int = SEED) -> torch.Generator:
    """Every random source this module uses, seeded; torch restricted to deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def frozen_states(
    encoder: SentenceEncoder, texts: Sequence[str], start: int, max_tokens: int, cache_dir: Path | None,
    batch_size: int = 64,
) -> FrozenStates:  # fmt: skip
    """Hidden states at layer ``start`` and the sentence vectors of the frozen encoder (cached per text set)."""
    key = hashlib.sha256(f"{encoder.name}|{start}|{max_tokens}|frozen-v1".encode())
    for text in texts:
        key.update(text.encode("utf-8", errors="replace") + b"\x00")
    file = cache_dir / f"frozen-{key.hexdigest()[:24]}.npz" if cache_dir else None
    if file is not None and file.is_file():
        with np.load(file) as data:
            flat, lengths, sentence = data["states"], data["lengths"], data["sentence"]
    else:
        flat, lengths, sentence = _compute_frozen(encoder, texts, start, max_tokens, batch_size)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(".tmp.npz")
            np.savez(tmp, states=flat, lengths=lengths, sentence=sentence)
            tmp.replace(file)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    states = [torch.from_numpy(flat[offsets[i] : offsets[i + 1]].astype(np.float32)) for i in range(len(lengths))]
    return FrozenStates(start, states, torch.from_numpy(sentence.astype(np.float32)))


@torch.inference_mode()
def _compute_frozen(encoder: SentenceEncoder, texts: Sequence[str], start: int, max_tokens: int,
                    batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    per_text: list[np.ndarray] = [np.zeros((0, encoder.dim), np.float16)] * len(texts)
    sentence = np.zeros((len(texts), encoder.dim), np.float32)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        batch = encoder.tokenizer([texts[i] for i in chunk], padding=True, truncation=True, max_length=max_tokens,
                                  return_tensors="pt")  # fmt: skip
        hidden = encoder.model(**batch.to(encoder.device), output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = nn.functional.normalize(masked_mean(hidden[-1], mask), dim=-1).cpu().numpy()
        lengths = batch["attention_mask"].sum(1).tolist()
        for row, i in enumerate(chunk):
            per_text[i] = hidden[start][row, : lengths[row]].cpu().numpy().astype(np.float16)
            sentence[i] = vectors[row]
    lengths_arr = np.array([len(s) for s in per_text], dtype=np.int64)
    return np.concatenate(per_text), lengths_arr, sentence


class TunedTop(nn.Module):
    """The top layers of the encoder plus the linear sentiment head, fed by frozen states."""

    def __init__(self, encoder: SentenceEncoder, tuned_layers: int, features: Sequence[str]) -> None:
        super().__init__()
        layers = encoder.model.encoder.layer
        if not 1 <= tuned_layers <= len(layers):
            raise ValueError(f"tuned_layers must be 1..{len(layers)}, got {tuned_layers}")
        self.config = encoder.model.config
        self.start = len(layers) - tuned_layers
        self.layers = nn.ModuleList(copy.deepcopy(layers[self.start :]))
        self.features = tuple(features)
        self.last = len(layers)
        readable = range(self.start, self.last + 1)  # the frozen input (start) and each tuned layer's output
        for block in self.features:
            if block.startswith("layer:") and int(block.split(":")[1]) not in readable:
                raise ValueError(f"feature block {block!r} is not computed when tuning the top {tuned_layers} "
                                 f"layer(s): use layer:{self.start}..layer:{self.last}")  # fmt: skip
        self.head = nn.Linear(sum(_width(block, encoder.dim) for block in self.features), 3)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, vader: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, 3) and the sentence vectors (batch, dim) this pass would give the other heads."""
        attention = create_bidirectional_mask(config=self.config, inputs_embeds=states, attention_mask=mask)
        weights = mask.unsqueeze(-1).to(states.dtype)
        means = {self.start: masked_mean(states, weights)}
        for offset, layer in enumerate(self.layers, start=1):
            states = layer(states, attention)
            means[self.start + offset] = masked_mean(states, weights)
        sentence = nn.functional.normalize(means[self.last], dim=-1)
        blocks = []
        for block in self.features:
            if block == "sentence":
                blocks.append(sentence)
            elif block == "last_max":
                blocks.append(masked_max(states, weights))
            elif block == "vader":
                blocks.append(vader)
            else:
                blocks.append(means[int(block.split(":")[1])])
        return self.head(torch.cat(blocks, dim=1)), sentence

    def tuned_state(self) -> dict[str, np.ndarray]:
        """The tuned layers under the packaged model's parameter names, float16 (the stored precision)."""
        return {
            f"{LAYER_PREFIX}{self.start + i}.{name}": value.detach().cpu().numpy().astype(np.float16)
            for i, layer in enumerate(self.layers) for name, value in sorted(layer.state_dict().items())
        }  # fmt: skip

    def round_to_stored_precision(self) -> None:
        """Round the tuned layers to float16 in place, so validation sees exactly what ships."""
        with torch.no_grad():
            for param in self.layers.parameters():
                param.copy_(param.half().float())


def _width(block: str, dim: int) -> int:
    if block == "vader":
        return 4
    if block in ("sentence", "last_max") or block.startswith("layer:"):
        return dim
    raise ValueError(f"feature block {block!r} cannot be fine-tuned (use sentence, layer:K, last_max or vader)")


def _sample_weights(config: FinetuneConfig, data: Examples) -> np.ndarray:
    mixing = dict(config.set_weights)
    weights = np.array([mixing.get(s, 1.0) for s in data.sets], dtype=np.float64)
    if config.balanced:
        counts = np.bincount(data.y, weights=weights, minlength=3)
        weights *= (weights.sum() / (3 * np.maximum(counts, 1e-9)))[data.y]
    return weights / weights.mean()


def _batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffled, then length-sorted within windows of 50 batches (little padding), batch order shuffled."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * 50
    batches = []
    for begin in range(0, len(order), window):
        part = sorted(order[begin : begin + window], key=lambda i: (lengths[i], i))
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _collate(frozen: FrozenStates, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(frozen.states[i]) for i in idx)
    dim = frozen.sentence.shape[1]
    states = torch.zeros(len(idx), longest, dim)
    mask = torch.zeros(len(idx), longest, dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(frozen.states[i])
        states[row, :n] = frozen.states[i]
        mask[row, :n] = 1
    return states, mask


@dataclass
class Trained:
    model: TunedTop
    config: FinetuneConfig
    seconds: float
    epochs_log: list[dict]


def train(
    config: FinetuneConfig, encoder: SentenceEncoder, data: Examples, frozen: FrozenStates,
    progress: Callable[[str], None] = lambda _: None, evaluate: Callable[[TunedTop, int], dict] | None = None,
) -> Trained:  # fmt: skip
    """Fine-tune a copy of ``encoder``'s top layers on ``data`` (whose frozen states are ``frozen``);
    ``evaluate`` runs after each epoch."""
    generator = seed_everything()
    started = time.perf_counter()
    model = TunedTop(encoder, config.tuned_layers, config.features)
    if model.start != frozen.start:
        raise ValueError(f"frozen states start at layer {frozen.start}, the tuned stack at {model.start}")
    vader = torch.from_numpy(vader_features(data.texts)) if "vader" in config.features else None
    targets = torch.from_numpy(data.y).long()
    weights = torch.from_numpy(_sample_weights(config, data)).float()
    lengths = [len(s) for s in frozen.states]
    steps_per_epoch = -(-len(lengths) // config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup))
    optimiser = torch.optim.AdamW(
        [{"params": model.layers.parameters(), "lr": config.encoder_lr},
         {"params": model.head.parameters(), "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )  # fmt: skip
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    log = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        sums = {"ce": 0.0, "distill": 0.0}
        for step, idx in enumerate(_batches(lengths, config.batch_size, generator), start=1):
            states, mask = _collate(frozen, idx)
            logits, sentence = model(states, mask, vader[idx] if vader is not None else None)
            ce = (nn.functional.cross_entropy(logits, targets[idx], reduction="none") * weights[idx]).mean()
            distill = (1 - (sentence * frozen.sentence[idx]).sum(1)).mean()
            loss = ce + config.distill_weight * distill
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            sums["ce"] += float(ce.detach())
            sums["distill"] += float(distill.detach())
            if step % 50 == 0:
                progress(f"{config.name}: epoch {epoch}/{config.epochs}, step {step}/{steps_per_epoch}, "
                         f"loss {sums['ce'] / step:.3f} + {sums['distill'] / step:.4f}")  # fmt: skip
        entry = {"epoch": epoch, "ce": round(sums["ce"] / steps_per_epoch, 4),
                 "distill": round(sums["distill"] / steps_per_epoch, 5)}  # fmt: skip
        if evaluate is not None:
            model.eval()
            entry.update(evaluate(model, epoch))
        log.append(entry)
    model.eval()
    model.round_to_stored_precision()
    return Trained(model, config, time.perf_counter() - started, log)


def prepare(
    encoder: SentenceEncoder, config: FinetuneConfig, texts: Sequence[str], cache_dir: Path | None
) -> FrozenStates:
    """Frozen states for ``texts`` at the layer where ``config``'s tuned stack begins."""
    start = len(encoder.model.encoder.layer) - config.tuned_layers
    return frozen_states(encoder, texts, start, config.max_tokens, cache_dir)


def subset(frozen: FrozenStates, idx: Sequence[int]) -> FrozenStates:
    return FrozenStates(frozen.start, [frozen.states[i] for i in idx], frozen.sentence[list(idx)])


@torch.inference_mode()
def predict(
    model: TunedTop, frozen: FrozenStates, texts: Sequence[str], batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, 3) and sentence vectors (n, dim) of the tuned stack for texts with frozen states."""
    model.eval()
    vader = torch.from_numpy(vader_features(texts)) if "vader" in model.features else None
    logits = np.zeros((len(texts), 3), np.float32)
    sentence = np.zeros((len(texts), frozen.sentence.shape[1]), np.float32)
    order = sorted(range(len(texts)), key=lambda i: (len(frozen.states[i]), i))
    for begin in range(0, len(order), batch_size):
        idx = order[begin : begin + batch_size]
        states, mask = _collate(frozen, idx)
        out, vectors = model(states, mask, vader[idx] if vader is not None else None)
        logits[idx], sentence[idx] = out.numpy(), vectors.numpy()
    return logits, sentence


def tuned_layers_bytes(model: TunedTop) -> bytes:
    """The tuned layers as .npz bytes; np.savez writes fixed zip timestamps, so same weights, same bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **model.tuned_state())
    return buffer.getvalue()
