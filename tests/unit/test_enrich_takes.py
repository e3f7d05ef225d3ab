"""One enrich take: signals without text go straight on, texts go to the models a model batch at a time,
and each part's outputs reach the caller as soon as they are encoded (pipeline/enrichment.py ``process``)."""

from __future__ import annotations

from datetime import datetime, timezone

from touchpoint.core.sealing import Sealer
from touchpoint.pipeline.enrichment import EnrichStage, Incoming, models_for
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

TEXTS = ["The gate agent was rude.", None, "Lovely crew, smooth boarding.", None, "My bag never arrived.", None,
         "Refund took three weeks.", "   "]  # fmt: skip


def take() -> list[Incoming]:
    codec = AvroCodec.for_subject("raw_signal")
    messages = []
    for i, text in enumerate(TEXTS):
        signal = RawSignal(source="typeform", source_id=f"r{i}", channel="survey", brand="acme",
                           occurred_at=datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc), text=text,
                           score=Score("nps", i, 0, 10))  # fmt: skip
        messages.append(Incoming(f"k{i}".encode(), codec.encode(signal.to_record()), "t.raw", 0, i))
    messages.append(Incoming(b"poison", b"not avro", "t.raw", 0, len(TEXTS)))
    return messages


def ids(outputs: list[tuple[bytes | None, bytes]]) -> list[str]:
    codec = AvroCodec.for_subject("enriched_signal")
    return [codec.decode(value)["source_id"] for _, value in outputs]


async def test_a_take_is_sent_in_parts_bare_scores_first_then_texts_a_model_batch_at_a_time(enricher, settings) -> None:
    stage = EnrichStage(models_for(settings, enricher), Sealer.from_settings(settings))
    parts: list[list[str]] = []
    result = await stage.process(take(), 2, lambda outputs: parts.append(ids(outputs)))
    assert parts == [["r1", "r3", "r5", "r7"], ["r0", "r2"], ["r4", "r6"]]  # "   " has no text either
    assert ids(result.outputs) == [i for part in parts for i in part]  # every output once, in the parts' order
    assert [letter["stage"] for letter in result.dead_letters] == ["decode"]  # the poison: a dead letter, not a part

    whole = await stage.process(take())  # one model call for every text: the same enrichments
    codec = AvroCodec.for_subject("enriched_signal")

    def by_id(outputs: list[tuple[bytes | None, bytes]]) -> dict[str, tuple]:
        records = (codec.decode(value) for _, value in outputs)
        return {r["source_id"]: (r["sentiment_label"], r["touchpoints"], r["language"]) for r in records}

    assert by_id(whole.outputs) == by_id(result.outputs)
    assert by_id(result.outputs)["r1"] == (None, [], "und")  # a bare score: no model read it
