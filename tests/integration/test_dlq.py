"""`touchpoint dlq`: dead letters read back once, sealed, cut when huge, replayed once, and the balance."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from touchpoint.cli import main
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.deadletter import DeadLetterCodec, dead_letter
from touchpoint.core.kafka import client_options, read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.pipeline import dlq
from touchpoint.schemas.signal import RawSignal

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def raw_bytes(settings: Settings, source_id: str) -> bytes:
    signal = RawSignal(source="typeform", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN, text="late")
    return SignalProducer(settings).encode(signal)


async def send_letters(settings: Settings, letters: list[dict]) -> None:
    codec = DeadLetterCodec.from_settings(settings)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(settings.topic_dead_letter, codec.encode(x)) for x in letters])
    finally:
        await producer.stop()


async def put_letters(settings: Settings) -> list[bytes]:
    """Two worker-stage letters (replayable) and one connector letter (not)."""
    payloads = [raw_bytes(settings, "r-1"), raw_bytes(settings, "r-2")]
    await send_letters(settings, [
        dead_letter("enrich", "model failed: out of memory", payloads[0], key=b"cust-1", topic=settings.topic_raw, partition=0, offset=7),
        dead_letter("store", "rejected", payloads[1], key=b"cust-2", topic=settings.topic_raw, partition=1, offset=3),
        dead_letter("connector.parse", "body is not JSON", b"{nope", origin="tool:typeform", source="typeform"),
    ])  # fmt: skip
    return payloads


async def test_replay_sends_worker_letters_back_once_and_leaves_connector_letters(live_settings: Settings) -> None:
    payloads = await put_letters(live_settings)

    letters = await dlq.read_letters(live_settings)
    assert dlq.stage_counts(letters) == {"enrich": 1, "store": 1, "connector.parse": 1}
    assert [x.summary()["replayable"] for x in letters].count(True) == 2

    preview = await dlq.replay(live_settings, dry_run=True)
    assert sum(preview.by_topic.values()) == 2 and await read_topic_records(live_settings, live_settings.topic_raw) == []

    first = await dlq.replay(live_settings)
    assert (first.produced, first.skipped_not_replayable) == (2, 1)
    replayed = await read_topic_records(live_settings, live_settings.topic_raw)
    assert sorted((m.key, m.value) for m in replayed) == sorted([(b"cust-1", payloads[0]), (b"cust-2", payloads[1])])
    assert {x.stage: x.replayed for x in await dlq.read_letters(live_settings)} == {
        "enrich": True, "store": True, "connector.parse": False}  # fmt: skip

    second = await dlq.replay(live_settings)
    assert (second.produced, second.skipped_already_replayed, second.skipped_not_replayable) == (0, 2, 1)
    again = await dlq.replay(live_settings, stage="store", again=True)
    assert (again.produced, again.skipped_filtered) == (1, 2)
    assert len(await read_topic_records(live_settings, live_settings.topic_raw)) == 3


async def test_the_same_failure_twice_is_one_letter_sealed_and_a_huge_one_is_cut(live_settings: Settings) -> None:
    secret_line = b'{"id": "9", "text": "mail me: dana.whitfield@example.org"}'
    huge = b"x" * (live_settings.dead_letter_max_payload_bytes * 3)
    letter = dead_letter("connector.validate", "occurred_at is missing", secret_line, origin="file:a.jsonl", source="file")
    again = dead_letter("connector.validate", "occurred_at is missing", secret_line, origin="file:a.jsonl", source="file")
    big = dead_letter("connector.validate", "text over the limit", huge, origin="file:a.jsonl", source="file")
    await send_letters(live_settings, [letter, again, big])  # a re-import writes the same letter again

    letters = await dlq.read_letters(live_settings)
    assert len(letters) == 2, "the same failure of the same bytes is one letter"
    raw_topic = b"".join(m.value for m in await read_topic_records(live_settings, live_settings.topic_dead_letter))
    assert b"dana.whitfield" not in raw_topic, "dead-letter payloads are sealed in Kafka"
    codec = DeadLetterCodec.from_settings(live_settings)
    by_reason = {x.record["reason"]: x for x in letters}
    assert codec.original(by_reason["occurred_at is missing"].record) == secret_line  # replay can open it
    cut = by_reason["text over the limit"]
    assert cut.record["payload_truncated"] and cut.record["payload_size"] == len(huge) and not cut.replayable
    assert len(codec.original(cut.record)) == live_settings.dead_letter_max_payload_bytes


def test_dlq_list_cli_shows_each_letter_and_the_stage_counts(live_settings: Settings, capsys, monkeypatch) -> None:
    asyncio.run(put_letters(live_settings))
    for name, value in {
        "TOUCHPOINT_KAFKA_BOOTSTRAP": live_settings.kafka_bootstrap,
        "TOUCHPOINT_TOPIC_DEAD_LETTER": live_settings.topic_dead_letter,
        "TOUCHPOINT_TOPIC_DEAD_LETTER_REPLAYS": live_settings.topic_dead_letter_replays,
        "TOUCHPOINT_CUSTOMER_ID_SECRET": live_settings.customer_id_secret,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["dlq", "list", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert out.out.count('"stage"') == 3 and "body is not JSON" in out.out
    assert "3 dead letters" in out.err and "connector.parse 1" in out.err
