"""`touchpoint enrich`: JSONL in, JSONL out, no broker and no store.

Every input object comes back with ``sentiment`` {label, score}, ``emotions``,
``touchpoints``, ``primary_touchpoint`` (where a score would count), ``journey_stage``,
``language`` and ``text_redacted``.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import IO, Any, Iterator

from rich.progress import Progress

from touchpoint.core.settings import Settings
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.enrichment import enricher_config, primary_touchpoint


def _batches(lines: IO[str], size: int) -> Iterator[list[dict[str, Any]]]:
    objects = (json.loads(line) for line in lines if line.strip())
    while batch := list(islice(objects, size)):
        yield batch


def enrich_jsonl(settings: Settings, source: IO[str], sink: IO[str], show_progress: bool = False) -> int:
    enricher = Enricher(enricher_config(settings))
    count = 0
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("enriching", total=None)
        for batch in _batches(source, settings.enrich_batch_size):
            texts = [obj.get("text") for obj in batch]
            hints = [obj.get("touchpoint") or obj.get("touchpoint_hint") for obj in batch]
            brands = [obj.get("brand") for obj in batch]
            for obj, hint, result in zip(batch, hints, enricher.enrich(texts, hints, brands=brands)):
                obj.update(
                    sentiment={"label": result.sentiment_label, "score": result.sentiment_score},
                    emotions=result.emotions,
                    touchpoints=result.touchpoints,
                    primary_touchpoint=primary_touchpoint(hint, result.touchpoints),
                    journey_stage=result.journey_stage,
                    language=result.language,
                    text_redacted=result.text_redacted,
                )
                sink.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += len(batch)
            progress.advance(task, len(batch))
    return count
