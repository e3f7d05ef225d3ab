"""Build a Hugging Face sequence classifier from the packaged encoder, fine-tuned by our own code.

`touchpoint train hf-sentiment --out DIR` fine-tunes ``BertForSequenceClassification``
(initialised from the packaged all-MiniLM-L6-v2) on a few labelled texts and
writes it with ``save_pretrained``: a real, local HF model that proves the
"any HF model" path (models/hf_sentiment.py) end to end. Its labels are
deliberately generic (``LABEL_0``...) so the label map is exercised too:
``LABEL_MAP`` is what to put in TOUCHPOINT_SENTIMENT_LABEL_MAP.
It is a plumbing check, not the default model: a few hundred texts and one
epoch on a CPU do not beat the trained head.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

from touchpoint.models.encoder import packaged_encoder_path
from touchpoint.models.sentiment import LABELS

LABEL_MAP = {f"LABEL_{i}": label for i, label in enumerate(LABELS)}
SEED = 13


def finetune_texts(
    texts: Sequence[str], labels: Sequence[str], out: Path, *, epochs: int = 1, batch_size: int = 16,
    learning_rate: float = 5e-5, max_tokens: int = 128,
) -> BertForSequenceClassification:  # fmt: skip
    """Fine-tune on (text, label) pairs, save model + tokenizer to ``out``; returns the model in eval mode."""
    torch.manual_seed(SEED)
    path = packaged_encoder_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = BertForSequenceClassification.from_pretrained(
        path, num_labels=len(LABELS), local_files_only=True,
        id2label={i: name for i, name in enumerate(LABEL_MAP)}, label2id={name: i for i, name in enumerate(LABEL_MAP)},
    )  # fmt: skip
    targets = torch.tensor([LABELS.index(label) for label in labels])
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                              return_tensors="pt")  # fmt: skip
            loss = model(**batch, labels=targets[idx]).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "touchpoint_label_map.json").write_text(json.dumps(LABEL_MAP) + "\n")
    return model


def finetune_sequence_classifier(data_dir: Path, out: Path, limit: int = 200) -> Path:
    """Fine-tune on the first ``limit`` texts (stable order) of the tweets train split."""
    from touchpoint.models import datasets

    rows = datasets.sample(datasets.load("vader_tweets", data_dir, split="train"), limit)
    finetune_texts([r.text for r in rows], [r.label for r in rows], out)
    return out
