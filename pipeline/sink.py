"""The sink stage: enriched Avro bytes in, ClickHouse rows out.

What a store failure means is decided by error code (pipeline/store_errors.py):

1. Rows ClickHouse refuses as data: the batch is bisected down to the row at
   fault, which alone becomes a dead letter (logged and counted); the rest is stored.
2. Anything else (a store that is down, full, overloaded, misconfigured, or an
   error nobody classified): retried with backoff for as long as it takes,
   never dead-lettered. The batch's offsets stay uncommitted meanwhile;
   ``status`` says so to readiness and the ``touchpoint_component_failing``
   gauge, and the log names the fix.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Sequence

from touchpoint.core import metrics
from touchpoint.core.retry import retry_until_done
from touchpoint.core.status import ComponentStatus
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.store import SIGNAL_COLUMNS, AsyncStore
from touchpoint.pipeline.store_errors import StoreAction, StoreError, store_error
from touchpoint.schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)
_SIGNAL_ID = SIGNAL_COLUMNS.index("signal_id")
_INGESTED_AT = SIGNAL_COLUMNS.index("ingested_at")
_SOURCE = SIGNAL_COLUMNS.index("source")


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
        self.status = ComponentStatus("store")

    async def process(self, messages: Sequence[Incoming]) -> list[dict[str, Any]]:
        """Store what can be stored; return dead letters for the rest."""
        dead: list[dict[str, Any]] = []
        rows: list[tuple[Incoming, list[Any]]] = []
        for message in messages:
            if not message.value:
                dead.append(message.dead("decode", "the message has no value (a null or empty Kafka record); nothing to store"))
                continue
            try:
                rows.append((message, signal_row(self.codec.decode(message.value))))
            except Exception as exc:  # DecodeError or anything else a corrupt message raises: that record only
                reason = str(exc) if isinstance(exc, DecodeError) else f"undecodable: {type(exc).__name__}: {exc}"
                dead.append(message.dead("decode", reason, exc))
        await self._store(rows, dead)
        return dead

    async def migrate(self) -> list[str]:
        """Apply the DDL, waiting out a store that is not reachable or not ready yet (readiness says so)."""
        applied = await retry_until_done(self.store.migrate, self._report("migrations"), **self._backoff)
        self.status.recovered()
        return applied

    @property
    def _backoff(self) -> dict[str, float]:
        return {"initial_s": self.retry_initial_s, "max_s": self.retry_max_s}

    def _report(self, what: str):  # type: ignore[no-untyped-def]
        """The on_failure callback of the retry loop: bad rows end it, everything else is shown and retried."""

        def on_failure(exc: Exception, attempt: int, delay: float) -> None:
            error = exc if isinstance(exc, StoreError) else store_error(exc)
            metrics.SINK_INSERT_FAILURES.labels(error.action.value).inc()
            if error.action is StoreAction.BAD_ROWS:
                raise error
            metrics.SINK_INSERT_RETRIES.inc()
            self.status.failed(f"{what}: {error}")
            level = logging.ERROR if error.action is StoreAction.CONFIGURATION else logging.WARNING
            if attempt == 1 or attempt % 10 == 0:  # the first failure, then every tenth: visible, not a flood
                log.log(level, "ClickHouse %s failed (attempt %d, %s); %s; next try in %.1fs",
                        what, attempt, error, error.hint, delay)  # fmt: skip

        return on_failure

    async def _store(self, rows: list[tuple[Incoming, list[Any]]], dead: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            await self._insert([row for _, row in rows])
        except StoreError as exc:  # only BAD_ROWS gets here: find the row at fault
            if len(rows) == 1:
                message, row = rows[0]
                log.warning("ClickHouse refused signal %s as data: %s", row[_SIGNAL_ID], exc)
                named = {"signal_id": row[_SIGNAL_ID], "source": row[_SOURCE]}
                dead.append(message.dead("store", f"ClickHouse refused the row: {exc}", exc, named))
                return
            middle = len(rows) // 2
            await self._store(rows[:middle], dead)
            await self._store(rows[middle:], dead)
            return
        self.stored_rows += len(rows)
        observe_end_to_end([row for _, row in rows])

    async def _insert(self, rows: list[list[Any]]) -> None:
        async def attempt() -> None:
            started = time.perf_counter()
            try:
                await self.store.insert_signals(rows)
            finally:
                metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)

        await retry_until_done(attempt, self._report("insert"), **self._backoff)
        self.status.recovered()
        metrics.SINK_INSERT_BATCHES.inc()
        metrics.SINK_ROWS_INSERTED.inc(len(rows))
