"""The enrich stage: raw Avro bytes in, enriched Avro bytes and dead letters out.

Any message can arrive: null or empty, not Avro, another schema's id, valid
Avro with invalid values. Each becomes a dead letter for the one record at
fault, with its stage (decode, validate, enrich) and reason; the rest of the
batch flows. Model inference never runs on the event loop: the stage hands
each batch to the models (pipeline/inference.py: a child process by default)
from a dedicated thread. Counters move once per batch, after it is fully processed, so a batch
retried in place (pipeline/acks.py) counts each message once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from touchpoint.core import metrics
from touchpoint.core.deadletter import dead_letter
from touchpoint.core.sealing import Sealer, SealError
from touchpoint.core.settings import Settings
from touchpoint.models.encoder import inference_threads
from touchpoint.models.enricher import Enricher, EnricherConfig, has_text
from touchpoint.pipeline.inference import LocalModels, ModelProcess, Models
from touchpoint.schemas.codec import AvroCodec, DecodeError
from touchpoint.schemas.signal import InvalidSignal, validate_record

log = logging.getLogger(__name__)
RAW_ONLY_FIELDS = ("text", "text_sealed")


def sentiment_priors_path(settings: Settings) -> Path:
    """Where per-brand sentiment priors are written (`touchpoint train priors`) and read (the enricher)."""
    return settings.sentiment_priors_path or settings.data_dir / "sentiment-priors.json"


def enricher_config(settings: Settings) -> EnricherConfig:
    """The models' configuration from settings (the models themselves never read settings)."""
    return EnricherConfig(
        encoder_path=settings.encoder_path,
        sentiment_head_path=settings.sentiment_head_path,
        taxonomy_path=settings.taxonomy_path,
        taxonomy_packs=dict(settings.taxonomy_packs),
        emotions_path=settings.emotions_path,
        max_tokens=settings.max_text_tokens,
        encoder_batch_size=settings.encoder_batch_size,
        touchpoint_min_similarity=settings.touchpoint_min_similarity,
        touchpoint_max_tags=settings.touchpoint_max_tags,
        phone_region=settings.phone_region,
        phone_regions=tuple(settings.phone_regions),
        phone_regions_by_brand={b: tuple(r) for b, r in settings.phone_regions_by_brand.items()},
        sentiment_model=settings.sentiment_model,
        sentiment_label_map=settings.sentiment_label_map,
        sentiment_priors_path=str(sentiment_priors_path(settings)),
        encoder_backend=settings.encoder_backend,
        onnx_dir=str(settings.onnx_dir or settings.data_dir / "models"),
        inference_threads=inference_threads(settings.torch_threads),
    )


@dataclass(frozen=True)
class Incoming:
    """One Kafka message as the stage sees it."""

    key: bytes | None
    value: bytes | None  # None: a Kafka record with a null value (poison: dead-lettered, never dropped)
    topic: str
    partition: int
    offset: int

    def dead(
        self, stage: str, reason: str, error: BaseException | None = None, record: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A dead letter for this message; ``record`` (when it decoded) names its signal and source."""
        return dead_letter(
            stage, reason, self.value or b"", error=error, key=self.key,
            topic=self.topic, partition=self.partition, offset=self.offset,
            source=(record or {}).get("source"), signal_id=(record or {}).get("signal_id"),
        )  # fmt: skip


class Rejected(Exception):
    """A message that cannot go on, with the stage that found out, the reason and the record if it decoded."""

    def __init__(self, stage: str, reason: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.stage, self.reason, self.record = stage, reason, record


@dataclass
class StageResult:
    outputs: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def primary_touchpoint(hint: str | None, touchpoints: Sequence[str]) -> str | None:
    """The one touchpoint a score counts under: the survey's hint when the tagger kept it (the
    taxonomy knows it), else the top tag; None without tags. Decided here, once, and stored; rows
    stored before the field existed get the same rule in SQL (schemas/clickhouse/006_primary_touchpoint.sql)."""
    if hint and hint in touchpoints:
        return hint
    return touchpoints[0] if touchpoints else None


def enriched_record(raw: dict[str, Any], enrichment: Any, model_version: str) -> dict[str, Any]:
    record = {k: v for k, v in raw.items() if k not in RAW_ONLY_FIELDS}
    # shallow: the enrichment's lists are not shared with anything that changes them (asdict deep-copied
    # them: a third of the per-record cost of a score-only signal)
    record.update({f.name: getattr(enrichment, f.name) for f in fields(enrichment)})
    record["primary_touchpoint"] = primary_touchpoint(raw.get("touchpoint_hint"), record["touchpoints"])
    record["model_version"] = model_version
    record["enriched_at"] = datetime.now(timezone.utc)
    return record


def parts_by_text(
    good: list[tuple[Incoming, dict[str, Any]]], model_batch: int | None
) -> list[list[tuple[Incoming, dict[str, Any]]]]:
    """The signals without text (one part: no model reads them), then the texts ``model_batch`` at a time."""
    bare: list[tuple[Incoming, dict[str, Any]]] = []
    texts: list[tuple[Incoming, dict[str, Any]]] = []
    for item in good:
        (texts if has_text(item[1].get("text")) else bare).append(item)
    size = model_batch or max(1, len(texts))
    return [part for part in [bare] + [texts[i : i + size] for i in range(0, len(texts), size)] if part]


def models_for(settings: Settings, enricher: Enricher | None = None) -> Callable[[], Models]:
    """How a worker gets its models: ``enricher`` when one is given (tests and benchmarks share one), else
    a child process (``inference_process``, the default), else an enricher on the stage's thread."""
    if enricher is not None:
        return lambda: LocalModels(enricher)
    if settings.inference_process:
        return lambda: ModelProcess(enricher_config(settings)).start()
    return lambda: LocalModels(Enricher(enricher_config(settings)))


class EnrichStage:
    def __init__(self, models_factory: Callable[[], Models], sealer: Sealer) -> None:
        self._factory = models_factory
        self.sealer = sealer  # opens the texts connectors sealed (touchpoint.core.sealing)
        self._models: Models | None = None
        self._loading: asyncio.Future[Models] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich")
        self.raw_codec = AvroCodec.for_subject("raw_signal")
        self.enriched_codec = AvroCodec.for_subject("enriched_signal")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self) -> Models:
        """Load the models once (off the event loop); callers that ask meanwhile wait for the same load."""
        if self._models is None:
            if self._loading is None:
                self._loading = asyncio.ensure_future(self._run(self._factory))
            try:
                models = await asyncio.shield(self._loading)
            except BaseException:
                if self._loading.done():  # failed: the next call tries again
                    self._loading = None
                raise
            if self._models is None:
                self._models = models
                metrics.set_build_info(models.version)
        return self._models

    @property
    def loaded(self) -> bool:
        """Whether the models are in memory (readiness)."""
        return self._models is not None

    async def close(self) -> None:
        """Stop the model process, if the models run in one."""
        if self._models is not None:
            models, self._models, self._loading = self._models, None, None
            await self._run(models.close)

    def decode(self, message: Incoming) -> dict[str, Any]:
        """The raw record, or raises :class:`Rejected` naming the stage (decode or validate) and why."""
        if not message.value:
            raise Rejected("decode", "the message has no value (a null or empty Kafka record); nothing to enrich")
        try:
            record = self.raw_codec.decode(message.value)
        except Exception as exc:  # DecodeError names the problem; anything else is corrupt input too
            raise Rejected("decode", str(exc) if isinstance(exc, DecodeError) else f"undecodable: {type(exc).__name__}: {exc}") from exc
        if record.get("text_sealed"):
            try:
                record["text"] = self.sealer.open(record["text_sealed"], aad=record["signal_id"].encode()).decode()
            except (SealError, UnicodeDecodeError) as exc:
                raise Rejected("decode", f"the sealed text cannot be opened: {exc}", record) from exc
        try:
            validate_record(record)
        except Exception as exc:  # InvalidSignal names the rule; a wrong type in a field breaks one too
            reason = str(exc) if isinstance(exc, InvalidSignal) else f"{type(exc).__name__}: {exc}"
            raise Rejected("validate", reason, record) from exc
        return record

    async def process(
        self, messages: Sequence[Incoming], model_batch: int | None = None,
        on_part: Callable[[list[tuple[bytes | None, bytes]]], None] | None = None,
    ) -> StageResult:  # fmt: skip
        """Decode, enrich and encode one take. Signals without text never wait for a model: they form the
        first part; texts follow ``model_batch`` at a time (all at once when None). ``on_part`` gets each
        part's outputs as soon as they are encoded, so a caller can send them while the models run on."""
        models = await self.load()
        result = StageResult()
        good: list[tuple[Incoming, dict[str, Any]]] = []
        for message in messages:
            try:
                good.append((message, self.decode(message)))
            except Rejected as rejected:
                error = rejected.__cause__ or rejected
                result.dead_letters.append(message.dead(rejected.stage, rejected.reason, error, rejected.record))
        for part in parts_by_text(good, model_batch):
            before = len(result.outputs)
            await self._enrich_into(models, part, result)
            if on_part is not None and len(result.outputs) > before:
                on_part(result.outputs[before:])
        metrics.ENRICH_EVENTS_IN.inc(len(messages))  # once per take, when it is done
        metrics.ENRICH_BATCH_SIZE.observe(len(messages))
        for letter in result.dead_letters:
            metrics.ENRICH_FAILURES.labels(letter["stage"]).inc()
        return result

    async def _enrich_into(self, models: Models, good: list[tuple[Incoming, dict[str, Any]]], result: StageResult) -> None:
        try:
            run = await self._run(
                models.run, [r["text"] for _, r in good], [r["touchpoint_hint"] for _, r in good], [r["brand"] for _, r in good]
            )  # fmt: skip
        except Exception:
            if len(good) == 1:
                raise
            log.exception("batch enrichment failed; retrying record by record to isolate the bad one")
            for item in good:
                try:
                    await self._enrich_into(models, [item], result)
                except Exception as exc:
                    result.dead_letters.append(item[0].dead("enrich", f"enrichment failed: {exc}", exc, item[1]))
            return
        metrics.ENRICH_INFERENCE_SECONDS.observe(run.seconds)
        metrics.ENRICH_TEXTS_TRUNCATED.inc(run.truncated)
        for (message, raw), enrichment in zip(good, run.enrichments):
            try:
                record = enriched_record(raw, enrichment, models.version)
                result.outputs.append((message.key, self.enriched_codec.encode(record)))
            except Exception as exc:  # a value the enriched schema cannot hold: this record only
                result.dead_letters.append(message.dead("enrich", f"enriched record does not fit its schema: {exc}", exc, raw))
