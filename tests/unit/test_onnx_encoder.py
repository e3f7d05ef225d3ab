"""The encoder in ONNX Runtime (models/onnx_encoder.py): exported by the project's own code from the loaded
weights; fp32 gives torch's numbers, int8 stays close and its sentiment labels are re-checked exactly when
close; the file is named by the weights, so a changed encoder never reads a stale export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from touchpoint.models.enricher import Enricher, EnricherConfig
from touchpoint.models.onnx_encoder import OnnxEncoder, artifact_name, export_onnx, weights_fingerprint

TEXTS = [
    "The agent was rude and hung up on me twice",
    "Lovely staff at the front desk, check-in took two minutes",
    "My parcel is three days late and nobody answers the chat",
    "ok",
    "The app crashes every time I open the payment screen, please fix this, it has been a week already",
    "Flight was fine I guess",
]


@pytest.fixture(scope="module")
def exported(enricher, tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxEncoder]:
    folder = tmp_path_factory.mktemp("onnx")
    return {p: OnnxEncoder.from_torch(enricher.encoder, folder, p, threads=1) for p in ("fp32", "int8")}


def test_fp32_gives_the_torch_encoders_outputs(enricher, exported) -> None:
    torch_out, onnx_out = enricher.encoder.encode_rich(TEXTS), exported["fp32"].encode_rich(TEXTS)
    np.testing.assert_allclose(onnx_out.sentence, torch_out.sentence, atol=1e-4)
    np.testing.assert_allclose(onnx_out.layer_means, torch_out.layer_means, atol=1e-4)
    np.testing.assert_allclose(onnx_out.last_max, torch_out.last_max, atol=1e-3)


def test_int8_is_close_and_carries_its_exact_twin(enricher, exported) -> None:
    int8 = exported["int8"]
    assert int8.exact is not None and int8.exact.backend == "onnx-fp32" and int8.backend == "onnx-int8"
    a, b = enricher.encoder.encode(TEXTS), int8.encode(TEXTS)
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.95, cosine


def test_the_export_is_reused_for_the_same_weights_and_renamed_for_others(enricher, exported) -> None:
    fp32 = exported["fp32"].file
    folder = fp32.parent
    before = fp32.stat().st_mtime_ns
    assert export_onnx(enricher.encoder, folder, "fp32") == fp32 and fp32.stat().st_mtime_ns == before
    fingerprint = weights_fingerprint(enricher.encoder.model)
    assert fp32.name == artifact_name(fingerprint, "fp32")
    assert artifact_name("0" * 64, "fp32") != fp32.name  # other weights: another file, never this one
    assert not list(Path(folder).glob(".export-*")), "no half-written export is left behind"


def test_an_int8_enricher_labels_like_torch_and_says_its_backend(enricher, exported) -> None:
    folder = exported["int8"].file.parent
    int8 = Enricher(replace(EnricherConfig(), encoder_backend="onnx-int8", onnx_dir=str(folder), inference_threads=1))
    assert "+onnx-int8/" in int8.version and "onnx" not in enricher.version
    ours, theirs = int8.enrich(TEXTS), enricher.enrich(TEXTS)
    assert [e.sentiment_label for e in ours] == [e.sentiment_label for e in theirs]
    assert [e.language for e in ours] == [e.language for e in theirs]


def test_the_default_backend_is_int8_only_while_the_card_measures_it_within_tolerance() -> None:
    """The product default (settings) follows the model card's verdict; the library default stays exact."""
    from touchpoint.core.settings import Settings
    from touchpoint.models.evaluate import models_dir
    from touchpoint.models.quantised_eval import TOLERANCE

    card = (models_dir() / "MODEL_CARD.md").read_text()
    within = f"int8 is within {TOLERANCE} of torch on every held-out set" in card
    assert within or f"int8 is **not** within {TOLERANCE}" in card, "run `make eval`: the card has no int8 verdict"
    assert Settings().encoder_backend == ("onnx-int8" if within else "torch")
    assert EnricherConfig().encoder_backend == "torch"
