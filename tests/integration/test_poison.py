"""Any message at all: null, empty, garbage, another schema, valid Avro with invalid values.

Each is dead-lettered with its stage and reason, the good ones around it are
stored, the worker's commits move past all of them (lag clears), and the
balance holds: produced = stored + dead-lettered.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from tests.polling import wait_for
from touchpoint.connectors.testing import read_topic
from touchpoint.core.kafka import client_options
from touchpoint.core.settings import Settings
from touchpoint.pipeline.runtime import running_worker
from touchpoint.pipeline.store import Store
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import MAX_TEXT_CHARS, RawSignal, Score

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def signal(source_id: str, **fields) -> RawSignal:
    return RawSignal(source="poison", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN, **fields)


def invalid_but_valid_avro(source_id: str, **changes) -> bytes:
    """Bytes of the real schema whose values break the contract's rules (Avro cannot say them)."""
    record = {**signal(source_id, score=Score("nps", 5, 0, 10)).to_record(), **changes}
    return AvroCodec.for_subject("raw_signal").encode(record)


async def test_every_kind_of_poison_is_dead_lettered_and_the_partition_moves_on(live_settings: Settings, enricher) -> None:
    codec = AvroCodec.for_subject("raw_signal")
    good = [signal(f"good-{i}", score=Score("nps", i, 0, 10)) for i in range(4)]
    poison = {
        "null value": None,
        "empty value": b"",
        "garbage": b"\x00\x01not avro at all",
        "another subject's schema id": AvroCodec.for_subject("dead_letter").encode(
            {"stage": "decode", "reason": "x", "error_type": "X", "payload": b"", "failed_at": WHEN, "context": {}}
        ),
        "truncated Avro body": codec.encode(good[0].to_record())[:12],
        "empty brand": invalid_but_valid_avro("bad-brand", brand=" "),
        "text over the limit": invalid_but_valid_avro("bad-long", text="x" * (MAX_TEXT_CHARS + 1), score=None),
        "score off its scale": invalid_but_valid_avro("bad-score", score={"metric": "nps", "value": 14.0, "scale_min": 0, "scale_max": 10}),
    }  # fmt: skip
    producer = AIOKafkaProducer(**client_options(live_settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        sends = [await producer.send(live_settings.topic_raw, codec.encode(s.to_record()), key=b"k", partition=0) for s in good[:2]]
        sends += [await producer.send(live_settings.topic_raw, value, key=b"k", partition=0) for value in poison.values()]
        sends += [await producer.send(live_settings.topic_raw, codec.encode(s.to_record()), key=b"k", partition=0) for s in good[2:]]
        sends += [await producer.send(live_settings.topic_enriched, value, key=b"k", partition=0) for value in (None, b"junk")]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    async with running_worker(live_settings, enricher) as app:
        ids = [s.signal_id for s in good]
        await wait_for(lambda: app.touchpoint["reader"].call(Store.count_stored, ids), timeout_s=90)
        await wait_for(lambda: _at_least(app, ids, 4), timeout_s=90)
        letters = await wait_for(lambda: _letters(live_settings, len(poison) + 2), timeout_s=90)

        async def raw_partition_committed() -> bool:
            lag = app.touchpoint["commits"]
            committed = {tp.partition: off for tp, off in app.consumer._committed_offset.items() if tp.topic == live_settings.topic_raw}
            return committed.get(0) == len(good) + len(poison) and not lag.stalled()

        await wait_for(raw_partition_committed, timeout_s=60)
    stages = sorted(letter["stage"] for _, letter in letters)
    assert stages == sorted(["decode"] * 7 + ["validate"] * 3), stages
    reasons = " | ".join(letter["reason"] for _, letter in letters)
    for expected in ("no value", "not a raw_signal message", "brand is empty", "over the 20000 limit", "outside its scale"):
        assert expected in reasons, (expected, reasons)
    # the balance: every produced message is stored or dead-lettered, once
    assert len(good) + len(poison) + 2 == 4 + len(letters)


async def _at_least(app, ids: list[str], n: int) -> bool:
    return await app.touchpoint["reader"].call(Store.count_stored, ids) >= n


async def _letters(settings: Settings, n: int):
    letters = await read_topic(settings, settings.topic_dead_letter, "dead_letter")
    return letters if len(letters) >= n else None
