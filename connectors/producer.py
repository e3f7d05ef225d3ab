"""Producing raw signals and connector dead letters to Kafka.

``acks=all`` and no idempotence (Tansu has no InitProducerId): a send counts
only when the broker acknowledged it, and any duplicate a retry causes is
absorbed downstream by the deterministic signal_id.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from touchpoint.core.deadletter import dead_letter, encode_dead_letter
from touchpoint.core.kafka import client_options
from touchpoint.core.metrics import count_dead_letters
from touchpoint.core.settings import Settings
from touchpoint.schemas.codec import AvroCodec, EncodeError
from touchpoint.schemas.signal import InvalidSignal, RawSignal


class SignalProducer:
    """``async with SignalProducer(settings) as p: await p.send(signal)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codec = AvroCodec.for_subject("raw_signal")
        self._producer = AIOKafkaProducer(
            **client_options(settings), acks="all", enable_idempotence=False, linger_ms=5
        )

    async def __aenter__(self) -> "SignalProducer":
        await self._producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    def encode(self, signal: RawSignal) -> bytes:
        """Validated Avro bytes; raises InvalidSignal naming what is wrong."""
        try:
            return self.codec.encode(signal.to_record())
        except EncodeError as exc:
            raise InvalidSignal(str(exc)) from exc

    async def send(self, signal: RawSignal) -> "asyncio.Future[Any]":
        """Queue a signal; await the returned future for the broker's acknowledgement."""
        return await self._producer.send(self.settings.topic_raw, self.encode(signal), key=signal.kafka_key)

    async def send_dead_letter(
        self, stage: str, reason: str, payload: bytes, error: BaseException | None = None, **context: str
    ) -> "asyncio.Future[Any]":
        record = dead_letter(stage, reason, payload, error=error, context=context)
        future = await self._producer.send(self.settings.topic_dead_letter, encode_dead_letter(record))
        future.add_done_callback(lambda done: not done.cancelled() and done.exception() is None and count_dead_letters([record]))
        return future

    async def flush(self) -> None:
        await self._producer.flush()
