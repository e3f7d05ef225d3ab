"""The connector framework: a connector is declarative attributes plus one generator.

A subclass says what it is (``name``, ``source``, ``channel``, ``kind``,
``cursor_field``) and implements two things:

- ``records(cursor)``: an async generator that reads the source from a saved
  cursor and yields :class:`SourceRecord` s, raw items as the source sent
  them, with a resume point (a cursor) on the record after which a restart
  may continue (usually the end of a page);
- ``to_signal(item)``: one raw item as a :class:`RawSignal`.

The framework owns everything else: loading and saving cursors, mapping,
validating, producing to Kafka keyed by customer, dead-lettering what cannot
be mapped (stage ``connector.parse``) or breaks the raw-signal rules
(``connector.validate``), counting, and the checkpoint rule written in
:meth:`Connector.run_once`. HTTP retries, ``Retry-After`` and rate limits live
in connectors/http.py, which every polling connector gets as ``self.http``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import os
import re
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, ClassVar

from touchpoint.connectors.http import HttpClient, HttpFailure, Page, RetryPolicy
from touchpoint.core import metrics
from touchpoint.core.checkpoints import CheckpointStore, Cursor
from touchpoint.core.identity import IdentifierKind, Identity
from touchpoint.core.settings import Settings
from touchpoint.core.tally import Tally
from touchpoint.schemas.signal import InvalidSignal, Kind, RawSignal, kind_of

if TYPE_CHECKING:
    from touchpoint.connectors.config import ConnectorConfig
    from touchpoint.connectors.producer import SignalProducer

log = logging.getLogger(__name__)
REGISTRY: dict[str, type["Connector"]] = {}
# What a source answers for a page token it no longer knows (expired, or from before a reset).
EXPIRED_TOKEN_STATUSES = frozenset({400, 404, 410})
# What a failing to_signal means: a broken shape is a parse error, a broken rule a validation error.
PARSE_ERRORS: tuple[type[BaseException], ...] = (KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass(frozen=True)
class SourceRecord:
    """One raw item and/or a resume point.

    ``cursor`` set means "a restart may resume right after this record";
    ``item`` None with a cursor is a bare checkpoint (end of a page). ``raw``
    is what a dead letter keeps (default: the item as JSON); ``error`` marks an
    item the connector already knows it cannot parse.
    """

    item: Any = None
    cursor: Cursor | None = None
    raw: bytes | None = None
    error: str | None = None

    @classmethod
    def checkpoint(cls, cursor: Cursor) -> "SourceRecord":
        return cls(cursor=cursor)

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.item, ensure_ascii=False, default=str).encode()


@dataclass
class RunStats(Tally):
    """What one connector did (one pass, or summed over passes by the runner)."""

    checkpoints: int = 0
    passes: int = 0
    errors: int = 0
    last_error: str | None = None
    reasons: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        super().add(other)
        if not isinstance(other, RunStats):
            return
        self.last_error = other.last_error or self.last_error
        self.reasons = (self.reasons + other.reasons)[-20:]


class Connector:
    """Base class: set the class attributes, implement ``records`` and ``to_signal``."""

    name: ClassVar[str]  # the config's `type:`, e.g. "x_recent_search"
    source: ClassVar[str]  # RawSignal.source, e.g. "x"
    channel: ClassVar[str]  # survey | chat | email | call | social | review
    kind: ClassVar[Kind | None] = None  # default: derived from channel (direct/indirect)
    cursor_field: ClassVar[str]  # the source field the cursor follows (documentation + state file)
    default_base_url: ClassVar[str] = ""
    auth_scheme: ClassVar[str] = "Bearer"  # Authorization: <scheme> <token>, when token_env is set

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls

    def required_param(self, name: str, what: str) -> str:
        """``params.NAME`` from the config, or an error naming what to set."""
        value = str(self.params.get(name) or "").strip()
        if not value:
            raise ValueError(f"connector {self.config.name!r}: params.{name} is required ({what})")
        return value

    def __init__(self, config: "ConnectorConfig", settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.params: dict[str, Any] = dict(config.params)
        self.brand = config.brand or "default"
        self.identity = Identity.from_settings(settings)
        self.progress: Callable[[str, float | None, float | None], None] | None = None  # a progress display, if any
        base_url = config.base_url or self.default_base_url
        if not base_url:
            raise ValueError(f"connector {config.name!r}: set base_url in the config")
        headers = {"User-Agent": f"touchpoint-connector/0.1 ({config.name})", **config.headers}
        token = _secret(config.token_env, config.name)
        if token:
            headers.update(self.auth_headers(token))
        policy = RetryPolicy(max_retry_after_s=config.max_retry_after_s)
        self.http = HttpClient(
            base_url, name=config.name, headers=headers, rate_per_s=config.rate_limit_per_s, policy=policy
        )

    def auth_headers(self, token: str) -> dict[str, str]:
        """How the source wants the credential sent (override for Basic auth or an API-key header)."""
        return {"Authorization": f"{self.auth_scheme} {token}"}

    # --- what a subclass implements ----------------------------------------------------
    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        """Yield raw items from ``cursor`` on (None = the beginning), with resume points."""
        raise NotImplementedError

    def to_signal(self, item: Any) -> RawSignal:
        """One raw item as a RawSignal; raise KeyError/ValueError/InvalidSignal on bad items."""
        raise NotImplementedError

    # --- helpers for subclasses ----------------------------------------------------------
    def report(self, what: str, done: float | None = None, total: float | None = None) -> None:
        """Tell the progress display what a long step is doing (an export's percent, responses sent of a file)."""
        if self.progress is not None:
            self.progress(what, done, total)

    def signal(self, *, source_id: Any, occurred_at: datetime, **fields: Any) -> RawSignal:
        """A RawSignal with this connector's source, channel, kind and brand filled in."""
        return RawSignal(
            source=self.source, source_id=str(source_id), channel=self.channel, brand=self.brand,
            kind=self.kind or kind_of(self.channel), occurred_at=occurred_at, **fields,
        )  # fmt: skip

    def customer(self, kind: IdentifierKind, value: Any) -> str | None:
        """Pseudonymous customer id for an identifier found in a payload (None when absent)."""
        return self.identity.of(kind, value, namespace=self.source if kind == "account" else None)  # a platform's own ids

    async def newest_first(
        self,
        pages: Callable[[str | None], AsyncIterator[Page]],
        cursor: Cursor | None,
        *,
        items_of: Callable[[Any], list[Any]],
        position_of: Callable[[Any], Any],
        max_pages: int | None = None,
    ) -> AsyncIterator[SourceRecord]:
        """Walk a newest-first paged source down to where the last finished pass began.

        Cursor: ``watermark`` (newest ``cursor_field`` position of the last
        finished pass) with ``at_watermark`` (fingerprints of the items seen
        at exactly that position), ``page`` (token of the next page of an
        unfinished pass) and ``newest``/``newest_ids`` (the same for the
        unfinished pass). Rules:

        1. Items below the watermark are old: skipped, and they end the pass
           after their page. An item *at* the watermark is old only if it was
           seen there: time positions are not unique (two reviews in the same
           second), so a late item sharing the watermark's time is not lost.
        2. An item without a readable position (malformed) takes the position
           of the item before it, so it is dead-lettered once, not at every poll.
        3. A saved page token the source no longer accepts (400/404/410: tokens
           expire) is dropped with a warning and the pass starts again from
           the newest item; the watermark stops it where the last pass began,
           and what it reads twice has the same signal_id.
        4. Token pages are stable; numbered pages can shift when new items
           arrive mid-pass, which only repeats items (same signal_id).
           ``max_pages`` bounds how deep one pass (a first backfill) walks.

        Records go out in the source's order (newest first within a pass,
        passes oldest to newest); ``occurred_at`` carries each one's real time.
        """
        state = dict(cursor or {})
        watermark = state.get("watermark")
        seen = set(state.get("at_watermark") or [])
        newest, newest_ids = state.get("newest"), set(state.get("newest_ids") or [])
        previous = None
        async with aclosing(self._resume(pages, state.get("page"))) as walk:
            async for number, page in _numbered(walk):
                reached = max_pages is not None and number >= max_pages
                for item in items_of(page.body):
                    position = _position(position_of, item)
                    known = position if position is not None else previous
                    previous = known
                    fingerprint = _fingerprint(item)
                    if known is not None and watermark is not None and (
                        known < watermark or (known == watermark and fingerprint in seen)
                    ):
                        reached = True
                        continue
                    if known is not None and (newest is None or known > newest):
                        newest, newest_ids = known, {fingerprint}
                    elif known is not None and known == newest:
                        newest_ids.add(fingerprint)
                    yield SourceRecord(item)
                if reached or page.next_token is None:
                    if newest is None or (watermark is not None and newest < watermark):
                        top, at_top = watermark, seen
                    elif newest == watermark:
                        top, at_top = watermark, seen | newest_ids
                    else:
                        top, at_top = newest, newest_ids
                    yield SourceRecord.checkpoint({"watermark": top, "at_watermark": sorted(at_top), "page": None})
                    return
                yield SourceRecord.checkpoint({
                    "watermark": watermark, "at_watermark": sorted(seen), "page": page.next_token,
                    "newest": newest, "newest_ids": sorted(newest_ids),
                })  # fmt: skip

    async def _resume(self, pages: Callable[[str | None], AsyncIterator[Page]], token: str | None) -> AsyncIterator[Page]:
        """Pages from a saved token, or from the top when the source no longer accepts it (rule 3 above)."""
        walk = pages(token)
        try:
            first = await walk.__anext__()
        except StopAsyncIteration:
            return
        except HttpFailure as exc:
            await walk.aclose()
            if token is None or exc.status not in EXPIRED_TOKEN_STATUSES:
                raise
            log.warning(
                "connector %s: the source refused the saved page token (HTTP %s); starting the pass again "
                "from the newest item, the watermark stops it where the last pass began", self.config.name, exc.status,
            )  # fmt: skip
            metrics.CONNECTOR_PAGE_TOKEN_RESETS.labels(self.config.name).inc()
            walk = pages(None)
            try:
                first = await walk.__anext__()
            except StopAsyncIteration:
                return
        async with aclosing(walk):
            yield first
            async for page in walk:
                yield page

    # --- what the framework owns ---------------------------------------------------------
    @property
    def checkpoint_key(self) -> str:
        return self.config.name

    async def run_once(
        self,
        producer: "SignalProducer",
        checkpoints: CheckpointStore,
        on_checkpoint: Callable[[RunStats], None] | None = None,
    ) -> RunStats:
        """One pass over the source from the saved cursor. The delivery guarantee:

        1. Load the cursor of the last checkpoint (None on a first run) and
           start ``records(cursor)``.
        2. Map each item to a RawSignal and send it to ``signals.raw`` keyed
           by customer (acks=all), or send it to the dead-letter topic with
           its original bytes, stage and reason. Each send returns a future
           the broker resolves when it has acknowledged the record.
        3. At a record that carries a cursor, wait until every send queued
           before it (signals and dead letters) is acknowledged; a failed
           send raises and ends the pass here.
        4. Only then save the cursor (atomic file replace + fsync).
        5. So a crash or cancel anywhere leaves the checkpoint at a point all
           of whose earlier records are in Kafka: nothing is lost, and a
           restart re-sends only records after it that were not yet
           checkpointed; their deterministic signal_id makes any such repeat
           the same ClickHouse row.

        ``on_checkpoint`` sees this pass's running counts after each save (progress bars).
        """
        stats = RunStats(passes=1)
        pending: list[asyncio.Future[Any]] = []
        counts = {"produced": 0, "dead_lettered": 0}
        cursor = await checkpoints.load(self.checkpoint_key)
        async with aclosing(self.records(cursor)) as stream:
            async for record in stream:
                if record.item is not None or record.error is not None:
                    stats.read += 1
                    metrics.CONNECTOR_RECORDS_READ.labels(self.config.name).inc()
                    pending.append(await self._send(producer, record, counts, stats))
                if record.cursor is not None:
                    await self._acknowledged(pending, counts, stats)
                    await checkpoints.save(self.checkpoint_key, record.cursor)
                    stats.checkpoints += 1
                    metrics.CONNECTOR_LAST_CHECKPOINT.labels(self.config.name).set(time.time())
                    if on_checkpoint is not None:
                        on_checkpoint(stats)
        await self._acknowledged(pending, counts, stats)
        return stats

    async def _send(
        self, producer: "SignalProducer", record: SourceRecord, counts: dict[str, int], stats: RunStats
    ) -> "asyncio.Future[Any]":
        stage, reason, error = "connector.parse", record.error, None
        if reason is None:
            try:
                signal = self.to_signal(record.item)
                future = await producer.send(signal)  # encodes and validates first
                counts["produced"] += 1
                return future
            except InvalidSignal as exc:
                stage, reason, error = "connector.validate", str(exc), exc
            except PARSE_ERRORS as exc:
                reason, error = f"{type(exc).__name__}: {exc} (item does not have the {self.name} shape)", exc
        counts["dead_lettered"] += 1
        stats.reasons = [*stats.reasons[-19:], f"{stage}: {reason}"]  # the latest few, for the summary
        return await producer.send_dead_letter(
            stage, str(reason), record.payload(), error, origin=f"connector:{self.config.name}", source=self.source
        )

    async def _acknowledged(self, pending: list["asyncio.Future[Any]"], counts: dict[str, int], stats: RunStats) -> None:
        """Wait for the broker to acknowledge every queued send, then count them."""
        if pending:
            await asyncio.gather(*pending)
            pending.clear()
        stats.produced += counts["produced"]
        stats.dead_lettered += counts["dead_lettered"]
        metrics.CONNECTOR_RECORDS_PRODUCED.labels(self.config.name).inc(counts["produced"])
        metrics.CONNECTOR_RECORDS_DEAD_LETTERED.labels(self.config.name).inc(counts["dead_lettered"])
        counts["produced"] = counts["dead_lettered"] = 0


async def _numbered(pages: AsyncIterator[Page]) -> AsyncIterator[tuple[int, Page]]:
    number = 0
    async for page in pages:
        number += 1
        yield number, page


def _secret(env_name: str | None, connector: str) -> str | None:
    """A credential from the environment (never from the config file, never printed)."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise ValueError(f"connector {connector!r}: environment variable {env_name} (token_env) is not set")
    return value


def _fingerprint(item: Any) -> str:
    """A short, stable id for an item's content (which items were seen at the watermark)."""
    return hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _position(position_of: Callable[[Any], Any], item: Any) -> Any:
    try:
        return position_of(item)
    except PARSE_ERRORS:
        return None  # a malformed item: to_signal will dead-letter it; it does not move the cursor


_BLOCK_TAG = re.compile(r"<\s*(br|/p|/div|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(value: str | None) -> str:
    """Plain text from source HTML: block tags break words, inline tags do not (``#<span>acme</span>``)."""
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", value or ""))
    return " ".join(html.unescape(text).split())

