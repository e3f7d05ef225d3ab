"""The packaged encoder in ONNX Runtime: exported by this project from the weights the torch encoder holds.

Why: the encoder forward is ~95% of enrichment; on CPU, ONNX Runtime runs the
same graph faster, and int8 dynamic quantisation faster still (bench/e2e.py).

What is exported: whatever :class:`~touchpoint.models.encoder.SentenceEncoder`
loaded (the packaged all-MiniLM-L6-v2, plus any fine-tuned layers a sentiment
artifact applied), with the same pooling (:func:`~touchpoint.models.encoder.pool`)
inside the graph, so the outputs are exactly what ``encode_rich`` returns:
the sentence vector, every layer's masked mean, the last layer's max.

How (reproducible; ``touchpoint export onnx`` runs it, and the enricher on
first use):

1. ``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch and
   token axes) of the model with eager attention;
2. ``int8``: ``onnxruntime.quantization.quantize_dynamic`` with per-channel
   int8 weights (activations are quantised per batch at run time);
3. the file is named by a fingerprint of the weights (sha256 of every
   tensor), the precision and the toolchain versions, and written atomically
   into a folder under the data dir: a changed encoder gets a new file, never
   a stale one, and concurrent replicas never read a half-written file.

Nothing is downloaded and no third-party ONNX file is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from touchpoint.models.encoder import Encoded, SentenceEncoder, encode_in_batches, pool

log = logging.getLogger(__name__)
Precision = Literal["fp32", "int8"]
RECIPE = "pooled-v1-opset17-int8-per-channel"  # change when the export steps change: new fingerprints
OUTPUTS = ("sentence", "layer_means", "last_max")
# Sentiment decisions closer than this (nats between the best and second-best label) are re-encoded exactly
# by an int8 encoder's fp32 twin, so quantisation noise cannot flip them. Chosen on the validation texts (never
# a test split): the smallest margin at which int8's labels equal torch's on at least 99.5% of them; 0.4 gave
# 99.98% but re-encoded twice as many texts, each at ~3x the int8 cost. The model card prints the whole
# trade-off (models/quantised_eval.py) and scores int8 with this margin on every held-out set.
RECHECK_MARGIN = 0.2


class OnnxExportError(RuntimeError):
    """The export failed; the message names the fix."""


class _Pooled(torch.nn.Module):
    """The encoder plus pooling, as one graph: (input_ids, attention_mask) -> sentence, layer_means, last_max."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):  # type: ignore[no-untyped-def]
        states = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids),
            output_hidden_states=True,
        ).hidden_states  # fmt: skip
        return pool(states, attention_mask)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the model (names, shapes and bytes), so fine-tuned layers change it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def toolchain() -> str:
    import onnx
    import onnxruntime

    return f"torch-{torch.__version__}/onnx-{onnx.__version__}/ort-{onnxruntime.__version__}"


def artifact_name(fingerprint: str, precision: Precision) -> str:
    """``encoder-<key>-<precision>.onnx``; the key hashes the weights, the recipe and the toolchain."""
    key = f"{fingerprint}|{RECIPE}|{toolchain()}|{precision}"
    return f"encoder-{hashlib.sha256(key.encode()).hexdigest()[:16]}-{precision}.onnx"


def export_onnx(encoder: SentenceEncoder, folder: Path, precision: Precision, fingerprint: str | None = None) -> Path:
    """The encoder as an ONNX file in ``folder`` (made now unless this exact one exists); returns its path.
    int8 is quantised from the fp32 file, which stays next to it (the exact re-check reads it)."""
    fingerprint = fingerprint or weights_fingerprint(encoder.model)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / artifact_name(fingerprint, precision)
    if target.is_file():
        return target
    source = export_onnx(encoder, folder, "fp32", fingerprint) if precision == "int8" else None
    log.warning("exporting the encoder to ONNX (%s) into %s: once per encoder and toolchain", precision, folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        made = Path(tmp) / f"{precision}.onnx"
        if source is None:
            _export_fp32(encoder, made)
        else:
            _quantise(source, made)
        os.replace(made, target)  # atomic: a reader sees no file or the whole file
    return target


def _export_fp32(encoder: SentenceEncoder, out: Path) -> None:
    model = encoder.model
    previous = getattr(model.config, "_attn_implementation", None)
    model.config._attn_implementation = "eager"  # plain matmuls: a clean graph for the exporter and the quantiser
    example = encoder.tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about Python control flow; the graph is checked by tests
            torch.onnx.export(
                _Pooled(model).eval().cpu(), (example["input_ids"], example["attention_mask"]), str(out),
                input_names=["input_ids", "attention_mask"], output_names=list(OUTPUTS), opset_version=17,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              **{name: {0: "batch"} for name in OUTPUTS}},
                dynamo=False,
            )  # fmt: skip
    except Exception as exc:  # pragma: no cover - toolchain problem
        raise OnnxExportError(f"exporting the encoder to ONNX failed ({exc}); set TOUCHPOINT_ENCODER_BACKEND=torch "
                              "or reinstall with `make install`") from exc  # fmt: skip
    finally:
        model.config._attn_implementation = previous


def _quantise(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _DropWarnings()  # the quantiser suggests "pre-processing" through the root logger on every run
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(quiet)


class _DropWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING


class OnnxEncoder:
    """Same interface as :class:`SentenceEncoder` (``encode``, ``encode_rich``, ``tokenizer``...), run by ONNX Runtime.

    An int8 encoder carries ``exact``, the fp32 export of the same weights: the
    enricher re-encodes with it the few texts whose sentiment decision is
    within ``recheck_margin`` of changing (models/enricher.py), so quantisation
    noise cannot flip a label that torch would give.
    """

    def __init__(self, model_file: Path, tokenizer_path: str, *, max_tokens: int, dim: int, layers: int,
                 precision: Precision, threads: int = 0, exact: "OnnxEncoder | None" = None,
                 tuned_id: str | None = None, name: str = "") -> None:  # fmt: skip
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.file = model_file
        self.path = tokenizer_path  # the torch encoder's folder (its tokenizer); cache keys use its name
        self.backend = f"onnx-{precision}"
        self.tuned_id = tuned_id  # the torch encoder's fine-tuned layers, exported with it (cache keys)
        self.name = f"{name}+{self.backend}"  # model versions say which backend computed a row
        self.max_tokens, self.dim, self.layers = max_tokens, dim, layers
        self.exact = exact
        self.recheck_margin = RECHECK_MARGIN
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between runs: the worker's other threads (decoding, producing) need those cycles
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    @classmethod
    def from_torch(cls, encoder: SentenceEncoder, folder: Path, precision: Precision, threads: int = 0) -> "OnnxEncoder":
        """Export ``encoder`` (once; reused while its weights and the toolchain stay the same) and load it."""
        fingerprint = weights_fingerprint(encoder.model)
        shape = {"max_tokens": encoder.max_tokens, "dim": encoder.dim, "layers": encoder.layers, "threads": threads,
                 "tuned_id": encoder.tuned_id, "name": encoder.name}  # fmt: skip
        exact = None
        if precision == "int8":
            exact = cls(export_onnx(encoder, folder, "fp32", fingerprint), encoder.path, precision="fp32", **shape)
        return cls(export_onnx(encoder, folder, precision, fingerprint), encoder.path, precision=precision,
                   exact=exact, **shape)  # fmt: skip

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.encode_rich(texts, batch_size).sentence

    def encode_rich(self, texts: Sequence[str], batch_size: int = 64) -> Encoded:
        return encode_in_batches(texts, batch_size, self.dim, self.layers, self._encode_batch)

    def _encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        feeds = {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": batch["attention_mask"].astype(np.int64)}
        sentence, means, last_max = self.session.run(list(OUTPUTS), feeds)
        return sentence, means, last_max
