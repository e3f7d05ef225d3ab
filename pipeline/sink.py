"""The sink stage: enriched Avro bytes in, ClickHouse rows out.

A store that is down is retried with exponential backoff for as long as it
takes (the batch's offsets stay uncommitted meanwhile). Rows the store rejects
as bad data are bisected down to the row at fault, which becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Sequence

from touchpoint.core import metrics
from touchpoint.core.retry import backoff_delay
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.store import SIGNAL_COLUMNS, AsyncStore, RowsRejected, StoreUnavailable, is_transient
from touchpoint.schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)
_SIGNAL_ID = SIGNAL_COLUMNS.index("signal_id")
_INGESTED_AT = SIGNAL_COLUMNS.index("ingested_at")


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


def repeated_ids(rows: Sequence[Sequence[Any]]) -> int:
    """Rows whose signal_id already appeared earlier in the same batch."""
    return len(rows) - len({row[_SIGNAL_ID] for row in rows})


def observe_end_to_end(rows: Sequence[Sequence[Any]]) -> None:
    """Seconds from ingested_at (set by the connector) to now, when the rows are stored."""
    now = datetime.now(timezone.utc)
    for row in rows:
        ingested = row[_INGESTED_AT]
        if isinstance(ingested, datetime):
            stamp = ingested if ingested.tzinfo else ingested.replace(tzinfo=timezone.utc)
            metrics.END_TO_END_SECONDS.observe(max(0.0, (now - stamp).total_seconds()))


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
        metrics.SINK_ROWS_DEDUPLICATED.inc(repeated_ids([row for _, row in rows]))
        await self._store(rows, dead)
        return dead

    async def migrate(self) -> list[str]:
        """Apply the DDL, waiting out a store that is not reachable yet (readiness says so meanwhile)."""
        attempt = 0
        while True:
            try:
                return await self.store.migrate()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                await self._wait(attempt, f"ClickHouse unavailable for migrations ({exc})")

    async def _wait(self, attempt: int, why: str) -> None:
        delay = backoff_delay(attempt, self.retry_initial_s, self.retry_max_s)
        log.warning("%s; retrying in %.1fs", why, delay)
        await asyncio.sleep(delay)

    async def _store(self, rows: list[tuple[Incoming, list[Any]]], dead: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            await self._insert_with_retry([row for _, row in rows])
            self.stored_rows += len(rows)
            observe_end_to_end([row for _, row in rows])
        except RowsRejected as exc:
            if len(rows) == 1:
                dead.append(rows[0][0].dead("store", f"ClickHouse rejected the row: {exc}", exc))
                return
            middle = len(rows) // 2
            await self._store(rows[:middle], dead)
            await self._store(rows[middle:], dead)

    async def _insert_with_retry(self, rows: list[list[Any]]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self.store.insert_signals(rows)
            except StoreUnavailable as exc:
                metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)
                metrics.SINK_INSERT_FAILURES.labels("unavailable").inc()
                metrics.SINK_INSERT_RETRIES.inc()
                attempt += 1
                await self._wait(attempt, f"ClickHouse unavailable ({exc})")
                continue
            except RowsRejected:
                metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)
                metrics.SINK_INSERT_FAILURES.labels("rejected").inc()
                raise
            except Exception:
                metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)
                metrics.SINK_INSERT_FAILURES.labels("error").inc()
                raise
            metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)
            metrics.SINK_INSERT_BATCHES.inc()
            metrics.SINK_ROWS_INSERTED.inc(len(rows))
            return
