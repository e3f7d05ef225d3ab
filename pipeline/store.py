"""ClickHouse through clickhouse-connect: a server over HTTP(S), or chdb in-process.

``chdb://PATH`` runs ClickHouse's own engine inside this process (one engine
per process; data on disk at PATH). ``http(s)://user:pass@host:port/db`` talks
to a server or cluster. The SQL is the same for both.

Async code must not block, so calls run on threads (:class:`AsyncStore`),
each with its own client (a client is not thread-safe; chdb lets several
clients share one engine). The worker keeps writes and reads apart: the sink
has its own thread, and the API's queries run on a separate pool, so a slow
query never delays an insert (nor an insert a query).

Every failure is raised as a classified
:class:`~touchpoint.pipeline.store_errors.StoreError` (retry, bad rows or
configuration, by ClickHouse error code), for chdb and HTTP alike.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from touchpoint.core.settings import Settings, mask_url
from touchpoint.pipeline.store_errors import StoreError, store_error

T = TypeVar("T")
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SIGNAL_COLUMNS = (
    "signal_id", "source_id", "kind", "channel", "source", "brand", "customer_id", "author",
    "occurred_at", "ingested_at", "enriched_at", "text_redacted", "pii_found", "language",
    "score_metric", "score_value", "score_scale_min", "score_scale_max", "touchpoint_hint",
    "touchpoints", "journey_stage", "sentiment_label", "sentiment_score", "emotions", "url",
    "attributes", "model_version", "primary_touchpoint",
)  # fmt: skip


_CHDB_OPENED_HERE: set[Path] = set()  # chdb keeps an engine per path for the life of the process


def opened_here(url: str) -> bool:
    """Whether this process runs a chdb engine on the folder of ``url`` (its lock is ours, not another process's)."""
    return url.startswith("chdb://") and Path(url.removeprefix("chdb://")).expanduser().resolve() in _CHDB_OPENED_HERE


def connect(url: str, database: str | None = None) -> Client:
    """A clickhouse-connect client for a ``chdb://`` or ``http(s)://`` URL."""
    if url.startswith("chdb://"):
        path = Path(url.removeprefix("chdb://")).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        _CHDB_OPENED_HERE.add(path)
        return clickhouse_connect.get_client(interface="chdb", path=str(path))
    parts = urlsplit(url)
    try:
        return clickhouse_connect.get_client(dsn=url, database=database or parts.path.strip("/") or None)
    except Exception as exc:
        error = store_error(exc)
        raise StoreError(error.action, error.code, f"cannot use ClickHouse at {mask_url(url)}: {error.message}") from exc


@dataclass(frozen=True)
class Statement:
    sql: str
    when: str | None = None  # a query answering 1 when the statement must run (a step of a resumable change)


@dataclass(frozen=True)
class Migration:
    """One versioned DDL file. A statement preceded by ``-- when: QUERY`` runs only while QUERY
    answers 1, so a file that moves data (003) is safe to run again after a crash halfway."""

    version: int
    name: str
    sql: str

    def statements(self, database: str) -> list[Statement]:
        kept = [line for line in self.sql.splitlines() if not line.strip().startswith("--") or line.strip().startswith("-- when:")]
        found = []
        for chunk in "\n".join(kept).split(";"):
            lines = [line.strip() for line in chunk.splitlines() if line.strip()]
            when = next((line.removeprefix("-- when:").strip() for line in lines if line.startswith("-- when:")), None)
            body = "\n".join(line for line in lines if not line.startswith("-- when:"))
            if body:
                found.append(Statement(body.replace("{db}", database), when.replace("{db}", database) if when else None))
        return found


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

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one client call; failures come out classified, and a broken connection is dropped."""
        try:
            return fn()
        except StoreError:
            raise
        except Exception as exc:
            self.close()  # reconnect on the next call
            raise store_error(exc) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def migrate(self) -> list[str]:
        """Apply DDL not applied yet; returns the names applied now (idempotent). Raises StoreError."""
        return self._call(self._migrate)

    def _migrate(self) -> list[str]:
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
                if statement.when is None or self.client.command(statement.when) in (1, "1"):
                    self.client.command(statement.sql)
            self.client.insert(f"{db}.schema_migrations", [[migration.version, migration.name]], ["version", "name"])
            applied.append(migration.name)
        return applied

    def insert_signals(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in SIGNAL_COLUMNS order. Raises a classified StoreError."""
        if rows:
            self._call(lambda: self.client.insert(f"{self.database}.signals", list(rows), column_names=list(SIGNAL_COLUMNS)))

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows (in ``columns`` order) into another table of this database. Raises a classified StoreError."""
        if rows:
            self._call(lambda: self.client.insert(f"{self.database}.{table}", list(rows), column_names=list(columns)))

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; use ``{name:Type}`` placeholders and ``parameters``, never string pasting."""
        result = self._call(lambda: self.client.query(sql.replace("{db}", self.database), parameters=dict(parameters or {})))
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def count_stored(self, signal_ids: Sequence[str]) -> int:
        rows = self.query(
            "SELECT uniqExact(signal_id) AS n FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)}",
            {"ids": list(signal_ids)},
        )
        return int(rows[0]["n"])


class AsyncStore:
    """Store calls on ``threads`` dedicated threads, each with its own client, so the event loop never blocks.

    ``run(fn, *args)`` calls ``fn`` on a thread; a function that takes the
    thread's :class:`Store` uses :meth:`call` (``await s.call(Store.count_stored, ids)``).
    """

    def __init__(self, url: str, database: str, threads: int = 1, name: str = "clickhouse") -> None:
        self.url, self.database = url, database
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    @classmethod
    def from_settings(cls, settings: Settings, threads: int = 1, name: str = "clickhouse") -> "AsyncStore":
        return cls(settings.clickhouse_url, settings.clickhouse_database, threads, name)

    def _thread_store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.url, self.database)
            with self._lock:
                self._stores.append(store)
        return store

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        """``method(store, *args)`` with this thread's Store (e.g. ``Store.count_stored``)."""
        return await self.run(lambda: method(self._thread_store(), *args))

    async def migrate(self) -> list[str]:
        return await self.call(Store.migrate)

    async def insert_signals(self, rows: Sequence[Sequence[Any]]) -> None:
        await self.call(Store.insert_signals, rows)

    async def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self.call(Store.query, sql, parameters)

    async def close(self) -> None:
        def close_all() -> None:
            with self._lock:
                for store in self._stores:
                    store.close()

        self._executor.shutdown(wait=True)  # calls in flight finish first
        close_all()
