"""Producing raw signals and connector dead letters to Kafka.

``acks=all`` and no idempotence (Tansu has no InitProducerId): a send counts
only when the broker acknowledged it, and any duplicate a retry causes is
absorbed downstream by the deterministic signal_id.

What a customer wrote leaves this process only sealed (touchpoint.core.sealing):
a signal's text travels as ``text_sealed``, bound to its signal_id, and a dead
letter's original bytes are sealed by its codec. A record too large for the
broker (``max_message_bytes``) is refused here, as an invalid signal, so it
becomes a dead letter instead of an error that stops a whole import.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from touchpoint.core.deadletter import DeadLetterCodec, dead_letter
from touchpoint.core.kafka import client_options, create_topics, track_topics
from touchpoint.core.metrics import count_dead_letters
from touchpoint.core.sealing import Sealer
from touchpoint.core.settings import Settings
from touchpoint.schemas.codec import AvroCodec, EncodeError
from touchpoint.schemas.signal import InvalidSignal, RawSignal

log = logging.getLogger(__name__)


class SignalProducer:
    """``async with SignalProducer(settings) as p: await p.send(signal)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codec = AvroCodec.for_subject("raw_signal")
        self.sealer = Sealer.from_settings(settings)
        self.letters = DeadLetterCodec(self.sealer, settings.dead_letter_max_payload_bytes)
        self._producer = AIOKafkaProducer(
            **client_options(settings), acks="all", enable_idempotence=False, linger_ms=5
        )

    async def __aenter__(self) -> "SignalProducer":
        try:
            await self._producer.start()
            await self._ensure_topics()
            await track_topics(self._producer, (self.settings.topic_raw, self.settings.topic_dead_letter))
        except BaseException:
            await self._producer.stop()  # release what start() opened before it failed
            raise
        return self

    async def _ensure_topics(self) -> None:
        """Create the raw and dead-letter topics with ``topic_partitions`` when the broker lacks them, rather than
        let a first send auto-create them with the broker's default partition count."""
        cluster = await self._producer.client.fetch_all_metadata()
        missing = [t for t in (self.settings.topic_raw, self.settings.topic_dead_letter) if t not in cluster.topics()]
        if missing:
            try:
                await create_topics(self.settings, missing)
            except KafkaError as exc:  # e.g. no permission on a managed cluster: topics made by the ops team
                log.warning("could not create topics %s (%s); sending anyway", ", ".join(missing), exc)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:  # a gone broker would keep the flush waiting; what was not acknowledged was never counted as sent
            await asyncio.wait_for(self._producer.stop(), self.settings.shutdown_timeout_s)
        except asyncio.TimeoutError:
            log.error("the Kafka producer did not stop within %.0fs (is the broker unreachable?)", self.settings.shutdown_timeout_s)

    def encode(self, signal: RawSignal) -> bytes:
        """Validated Avro bytes with the text sealed; raises InvalidSignal naming what is wrong."""
        record = signal.to_record()  # validates the clear record first
        if record["text"] is not None:
            record["text_sealed"] = self.sealer.seal(record["text"].encode(), aad=record["signal_id"].encode())
            record["text"] = None
        try:
            data = self.codec.encode(record)
        except EncodeError as exc:
            raise InvalidSignal(str(exc)) from exc
        if len(data) > self.settings.max_message_bytes:
            raise InvalidSignal(
                f"the signal is {len(data):,} bytes encoded, over the {self.settings.max_message_bytes:,}-byte message "
                "limit (TOUCHPOINT_MAX_MESSAGE_BYTES); trim its attributes or text"
            )
        return data

    async def send(self, signal: RawSignal) -> "asyncio.Future[Any]":
        """Queue a signal; await the returned future for the broker's acknowledgement."""
        return await self._producer.send(self.settings.topic_raw, self.encode(signal), key=signal.kafka_key)

    async def send_dead_letter(
        self,
        stage: str,
        reason: str,
        payload: bytes,
        error: BaseException | None = None,
        *,
        origin: str,
        source: str | None = None,
        **context: str,
    ) -> "asyncio.Future[Any]":
        """Queue a letter (``origin``: connector:NAME, tool:NAME or file:NAME); await the future for the ack."""
        record = dead_letter(stage, reason, payload, error=error, origin=origin, source=source, context=context)
        future = await self._producer.send(self.settings.topic_dead_letter, self.letters.encode(record), key=record["letter_id"].encode())
        future.add_done_callback(lambda done: not done.cancelled() and done.exception() is None and count_dead_letters([record]))
        return future

    async def flush(self) -> None:
        await self._producer.flush()
