"""ClickHouse through clickhouse-connect: a server over HTTP(S), or chdb in-process.

``chdb://PATH`` runs ClickHouse's own engine inside this process (one engine
per process; data on disk at PATH). ``http(s)://user:pass@host:port/db`` talks
to a server or cluster. The SQL is the same for both.

chdb is not thread-safe for concurrent use, and async code must not block, so
every call goes through one dedicated thread (:class:`AsyncStore`).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from touchpoint.core.settings import Settings, mask_url

T = TypeVar("T")
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SIGNAL_COLUMNS = (
    "signal_id", "source_id", "kind", "channel", "source", "brand", "customer_id", "author",
    "occurred_at", "ingested_at", "enriched_at", "text_redacted", "pii_found", "language",
    "score_metric", "score_value", "score_scale_min", "score_scale_max", "touchpoint_hint",
    "touchpoints", "journey_stage", "sentiment_label", "sentiment_score", "emotions", "url",
    "attributes", "model_version", "sentiment_reason",
)  # fmt: skip


class StoreUnavailable(RuntimeError):
    """The store cannot be reached now; retry later (data is not at fault)."""


class RowsRejected(ValueError):
    """The store refused these rows as bad data; retrying will not help."""


def is_transient(exc: BaseException) -> bool:
    """DB-API classification: OperationalError means retry, DataError means bad rows."""
    if isinstance(exc, DataError):
        return False
    return isinstance(exc, (OperationalError, ConnectionError, TimeoutError, StoreUnavailable))


def connect(url: str, database: str | None = None) -> Client:
    """A clickhouse-connect client for a ``chdb://`` or ``http(s)://`` URL."""
    if url.startswith("chdb://"):
        path = Path(url.removeprefix("chdb://")).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(interface="chdb", path=str(path))
    parts = urlsplit(url)
    try:
        return clickhouse_connect.get_client(dsn=url, database=database or parts.path.strip("/") or None)
    except OperationalError as exc:
        raise StoreUnavailable(f"cannot reach ClickHouse at {mask_url(url)}: {exc}") from exc


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str) -> list[str]:
        text = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [s.strip().replace("{db}", database) for s in text.split(";") if s.strip()]


def migrations() -> list[Migration]:
    """Versioned DDL files in schemas/clickhouse, in order."""
    found = []
    for entry in resources.files("touchpoint.schemas").joinpath("clickhouse").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


class Store:
    """Synchronous store: migrations, inserts and queries against one database."""

    def __init__(self, url: str, database: str) -> None:
        if not _IDENTIFIER.match(database):
            raise ValueError(f"database name {database!r} must be a plain identifier")
        self.url = url
        self.database = database
        self._client: Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Store":
        return cls(settings.clickhouse_url, settings.clickhouse_database)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = connect(self.url, self.database)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def migrate(self) -> list[str]:
        """Apply DDL not applied yet; returns the names applied now (idempotent)."""
        db = self.database
        self.client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {row[0] for row in self.client.query(f"SELECT version FROM {db}.schema_migrations FINAL").result_rows}
        applied = []
        for migration in migrations():
            if migration.version in done:
                continue
            for statement in migration.statements(db):
                self.client.command(statement)
            self.client.insert(f"{db}.schema_migrations", [[migration.version, migration.name]], ["version", "name"])
            applied.append(migration.name)
        return applied

    def insert_signals(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in SIGNAL_COLUMNS order. Raises StoreUnavailable or RowsRejected."""
        if not rows:
            return
        try:
            self.client.insert(f"{self.database}.signals", list(rows), column_names=list(SIGNAL_COLUMNS))
        except Exception as exc:
            if is_transient(exc):
                self.close()  # reconnect on the next attempt
                raise StoreUnavailable(str(exc)) from exc
            if isinstance(exc, (DataError, DatabaseError, TypeError, ValueError)):
                raise RowsRejected(f"{type(exc).__name__}: {exc}") from exc
            raise

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; use ``{name:Type}`` placeholders and ``parameters``, never string pasting."""
        result = self.client.query(sql.replace("{db}", self.database), parameters=dict(parameters or {}))
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def count_stored(self, signal_ids: Sequence[str]) -> int:
        rows = self.query(
            "SELECT uniqExact(signal_id) AS n FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)}",
            {"ids": list(signal_ids)},
        )
        return int(rows[0]["n"])


class AsyncStore:
    """Runs a :class:`Store` on one dedicated thread so the event loop never blocks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def migrate(self) -> list[str]:
        return await self.run(self.store.migrate)

    async def insert_signals(self, rows: Sequence[Sequence[Any]]) -> None:
        await self.run(self.store.insert_signals, rows)

    async def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self.run(self.store.query, sql, parameters)

    async def close(self) -> None:
        await self.run(self.store.close)
        self._executor.shutdown(wait=True)
