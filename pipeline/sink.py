"""The sink stage: enriched Avro bytes in, ClickHouse rows out.

A store that is down is retried with exponential backoff for as long as it
takes (the batch's offsets stay uncommitted meanwhile). Rows the store rejects
as bad data are bisected down to the row at fault, which becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from pipeline.enrichment import Incoming
from pipeline.store import SIGNAL_COLUMNS, AsyncStore, RowsRejected, StoreUnavailable
from schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)


def signal_row(record: dict[str, Any]) -> list[Any]:
    """An enriched record as a row in SIGNAL_COLUMNS order."""
    score = record.get("score") or {}
    flat = dict(record)
    flat.update(
        score_metric=score.get("metric"),
        score_value=score.get("value"),
        score_scale_min=score.get("scale_min"),
        score_scale_max=score.get("scale_max"),
    )
    return [flat.get(column) for column in SIGNAL_COLUMNS]


class SinkStage:
    def __init__(self, store: AsyncStore, retry_initial_s: float = 0.5, retry_max_s: float = 30.0) -> None:
        self.store = store
        self.codec = AvroCodec.for_subject("enriched_signal")
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stored_rows = 0

    async def process(self, messages: Sequence[Incoming]) -> list[dict[str, Any]]:
        """Store what can be stored; return dead letters for the rest."""
        dead: list[dict[str, Any]] = []
        rows: list[tuple[Incoming, list[Any]]] = []
        for message in messages:
            try:
                rows.append((message, signal_row(self.codec.decode(message.value))))
            except DecodeError as exc:
                dead.append(message.dead("decode", str(exc), exc))
        await self._store(rows, dead)
        return dead

    async def _store(self, rows: list[tuple[Incoming, list[Any]]], dead: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            await self._insert_with_retry([row for _, row in rows])
            self.stored_rows += len(rows)
        except RowsRejected as exc:
            if len(rows) == 1:
                dead.append(rows[0][0].dead("store", f"ClickHouse rejected the row: {exc}", exc))
                return
            middle = len(rows) // 2
            await self._store(rows[:middle], dead)
            await self._store(rows[middle:], dead)

    async def _insert_with_retry(self, rows: list[list[Any]]) -> None:
        delay = self.retry_initial_s
        while True:
            try:
                await self.store.insert_signals(rows)
                return
            except StoreUnavailable as exc:
                log.warning("ClickHouse unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
