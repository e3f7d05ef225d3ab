"""The enrich stage: raw Avro bytes in, enriched Avro bytes and dead letters out.

Decoding, validation and enrichment failures become dead letters for the one
record at fault; the rest of the batch flows. Model inference runs on a
dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from touchpoint.core import metrics
from touchpoint.core.deadletter import dead_letter
from touchpoint.core.settings import Settings
from touchpoint.models.enricher import Enricher, EnricherConfig
from touchpoint.schemas.codec import AvroCodec, DecodeError
from touchpoint.schemas.signal import InvalidSignal, validate_record

log = logging.getLogger(__name__)
RAW_ONLY_FIELDS = ("text",)


def sentiment_priors_path(settings: Settings) -> Path:
    """Where per-brand sentiment priors are written (`touchpoint train priors`) and read (the enricher)."""
    return settings.sentiment_priors_path or settings.data_dir / "sentiment-priors.json"


def enricher_config(settings: Settings) -> EnricherConfig:
    """The models' configuration from settings (the models themselves never read settings)."""
    return EnricherConfig(
        encoder_path=settings.encoder_path,
        sentiment_head_path=settings.sentiment_head_path,
        taxonomy_path=settings.taxonomy_path,
        max_tokens=settings.max_text_tokens,
        encoder_batch_size=settings.encoder_batch_size,
        touchpoint_min_similarity=settings.touchpoint_min_similarity,
        touchpoint_max_tags=settings.touchpoint_max_tags,
        phone_region=settings.phone_region,
        sentiment_model=settings.sentiment_model,
        sentiment_label_map=settings.sentiment_label_map,
        sentiment_priors_path=str(sentiment_priors_path(settings)),
    )


@dataclass(frozen=True)
class Incoming:
    """One Kafka message as the stage sees it."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int

    def dead(self, stage: str, reason: str, error: BaseException | None = None) -> dict[str, Any]:
        return dead_letter(
            stage, reason, self.value, error=error, key=self.key,
            topic=self.topic, partition=self.partition, offset=self.offset,
        )  # fmt: skip


@dataclass
class StageResult:
    outputs: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def enriched_record(raw: dict[str, Any], enrichment: Any, model_version: str) -> dict[str, Any]:
    record = {k: v for k, v in raw.items() if k not in RAW_ONLY_FIELDS}
    record.update(asdict(enrichment))
    record["model_version"] = model_version
    record["enriched_at"] = datetime.now(timezone.utc)
    return record


def count_truncated(enricher: Enricher, texts: Sequence[str | None]) -> int:
    """Texts the encoder cuts at max_tokens. Only texts with more characters than the
    token budget can be cut (every token covers at least one character), so only
    those few are tokenized again."""
    encoder = getattr(enricher, "encoder", None)
    limit = getattr(encoder, "max_tokens", None)
    tokenizer = getattr(encoder, "tokenizer", None)
    if limit is None or tokenizer is None:
        return 0
    long = [t for t in texts if t and len(t) > limit - 2]
    if not long:
        return 0
    # tokenize one past the limit: enough to know, and no "sequence too long" warning
    ids = tokenizer(long, add_special_tokens=True, truncation=True, max_length=limit + 1)["input_ids"]
    return sum(1 for tokens in ids if len(tokens) > limit)


def enrich_batch(
    enricher: Enricher, texts: Sequence[str | None], hints: Sequence[str | None],
    brands: Sequence[str | None] | None = None,
) -> list[Any]:  # fmt: skip
    """Run the models on one batch (blocking: call from the inference thread) and time it."""
    started = time.perf_counter()
    enrichments = enricher.enrich(texts, hints, brands)
    metrics.ENRICH_INFERENCE_SECONDS.observe(time.perf_counter() - started)
    metrics.ENRICH_TEXTS_TRUNCATED.inc(count_truncated(enricher, texts))
    return enrichments


class EnrichStage:
    def __init__(self, enricher_factory: Callable[[], Enricher]) -> None:
        self._factory = enricher_factory
        self._enricher: Enricher | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich")
        self.raw_codec = AvroCodec.for_subject("raw_signal")
        self.enriched_codec = AvroCodec.for_subject("enriched_signal")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self) -> Enricher:
        """Load the models once (off the event loop)."""
        if self._enricher is None:
            self._enricher = await self._run(self._factory)
            metrics.set_build_info(self._enricher.version)
        return self._enricher

    @property
    def loaded(self) -> bool:
        """Whether the models are in memory (readiness)."""
        return self._enricher is not None

    def decode(self, message: Incoming) -> dict[str, Any]:
        record = self.raw_codec.decode(message.value)
        validate_record(record)
        return record

    async def process(self, messages: Sequence[Incoming]) -> StageResult:
        enricher = await self.load()
        metrics.ENRICH_EVENTS_IN.inc(len(messages))
        metrics.ENRICH_BATCH_SIZE.observe(len(messages))
        result = StageResult()
        good: list[tuple[Incoming, dict[str, Any]]] = []
        for message in messages:
            try:
                good.append((message, self.decode(message)))
            except DecodeError as exc:
                metrics.ENRICH_FAILURES.labels("decode").inc()
                result.dead_letters.append(message.dead("decode", str(exc), exc))
            except InvalidSignal as exc:
                metrics.ENRICH_FAILURES.labels("validate").inc()
                result.dead_letters.append(message.dead("validate", str(exc), exc))
        if good:
            await self._enrich_into(enricher, good, result)
        return result

    async def _enrich_into(self, enricher: Enricher, good: list[tuple[Incoming, dict[str, Any]]], result: StageResult) -> None:
        try:
            enrichments = await self._run(
                enrich_batch, enricher, [r["text"] for _, r in good], [r["touchpoint_hint"] for _, r in good],
                [r["brand"] for _, r in good],
            )  # fmt: skip
        except Exception:
            if len(good) == 1:
                raise
            log.exception("batch enrichment failed; retrying record by record to isolate the bad one")
            for item in good:
                try:
                    await self._enrich_into(enricher, [item], result)
                except Exception as exc:
                    metrics.ENRICH_FAILURES.labels("enrich").inc()
                    result.dead_letters.append(item[0].dead("enrich", f"enrichment failed: {exc}", exc))
            return
        for (message, raw), enrichment in zip(good, enrichments):
            record = enriched_record(raw, enrichment, enricher.version)
            result.outputs.append((message.key, self.enriched_codec.encode(record)))
