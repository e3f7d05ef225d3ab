"""Real processes for crash-safety tests: the embedded broker, `touchpoint worker` and `touchpoint import`
as subprocesses, each killable with SIGKILL, on one chdb folder and one set of topics per test.

Reading the store while a worker runs goes through the worker's own API (a chdb
folder is open in one process at a time); after the worker stops, the test
opens the folder itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchpoint.core.broker import EmbeddedBroker, free_port

if TYPE_CHECKING:
    from touchpoint.core.settings import Settings

WHEN = "2026-11-0{day}T1{hour}:00:00Z"


def signal_lines(prefix: str, n: int, texts: list[str]) -> list[dict[str, Any]]:
    """``n`` generic-shape records: a third score-only, the rest with real sample texts."""
    lines = []
    for i in range(n):
        record: dict[str, Any] = {"id": f"{prefix}-{i}", "occurred_at": WHEN.format(day=1 + i % 9, hour=i % 10)}
        if i % 3 == 0:
            record["nps"] = i % 11
        else:
            record["text"] = texts[i % len(texts)]
        lines.append(record)
    return lines


@dataclass
class Stack:
    """One test's world: a broker on a fixed port (so it can be restarted), settings as environment."""

    root: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    broker_port: int = field(default_factory=free_port)
    broker: EmbeddedBroker | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TOUCHPOINT_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.broker_port}",
            "TOUCHPOINT_CLICKHOUSE_URL": f"chdb://{self.root / 'clickhouse'}",
            "TOUCHPOINT_CLICKHOUSE_DATABASE": f"chaos_{self.run}",
            "TOUCHPOINT_DATA_DIR": str(self.root / "data"),
            "TOUCHPOINT_APP_ID": f"chaos-{self.run}",
            "TOUCHPOINT_TOPIC_RAW": f"{self.run}.raw",
            "TOUCHPOINT_TOPIC_ENRICHED": f"{self.run}.enriched",
            "TOUCHPOINT_TOPIC_DEAD_LETTER": f"{self.run}.dead",
            "TOUCHPOINT_TOPIC_DEAD_LETTER_REPLAYS": f"{self.run}.dead.replays",
            "TOUCHPOINT_TOPIC_PARTITIONS": "2",
            "TOUCHPOINT_CUSTOMER_ID_SECRET": "chaos-test-secret-0123456789",
            "TOUCHPOINT_KAFKA_REBALANCE_TIMEOUT_S": "3",
            "TOUCHPOINT_KAFKA_SESSION_TIMEOUT_S": "10",
            "TOUCHPOINT_ENRICH_BATCH_WINDOW_S": "0.2",
            "TOUCHPOINT_SINK_BATCH_WINDOW_S": "0.2",
            "TOUCHPOINT_STORE_RETRY_MAX_S": "2",
            "TOUCHPOINT_COMMIT_STALL_S": "20",
            "TOUCHPOINT_SHUTDOWN_TIMEOUT_S": "15",
            "TOUCHPOINT_TORCH_THREADS": "1",
        }

    # --- the broker ---------------------------------------------------------------------
    def start_broker(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(port=self.broker_port, log_file=self.root / "data" / "broker.log")
        self.broker.start()

    def kill_broker(self) -> None:
        assert self.broker and self.broker.process
        self.broker.process.kill()
        self.broker.process.wait()

    # --- workers --------------------------------------------------------------------------
    def start_worker(self, web_port: int, module: str = "touchpoint", extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.root / f"worker-{web_port}-{len(self.workers)}.log", "ab")
        command = [sys.executable, "-m", module, "worker", "--web-port", str(web_port), "--web-bind", "127.0.0.1"]
        process = subprocess.Popen(command, env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)
        return process

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("worker-*.log")))

    def stop_all(self) -> None:
        self.stop_workers()
        if self.broker:
            self.broker.stop()

    def stop_workers(self) -> None:
        """SIGTERM every worker and wait for it (the broker stays: the balance reads the topics)."""
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # --- the importer -----------------------------------------------------------------------
    def write_file(self, name: str, records: list[dict[str, Any]]) -> Path:
        path = self.root / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    def start_import(self, path: Path, source: str = "chaos") -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "touchpoint", "import", str(path), "--channel", "survey", "--source", source,
                   "--brand", "acme"]  # fmt: skip
        return subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run_import(self, path: Path, source: str = "chaos", timeout_s: float = 300) -> str:
        process = self.start_import(path, source)
        out, _ = process.communicate(timeout=timeout_s)
        assert process.returncode == 0, out
        return out


def http_json(url: str, timeout_s: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, None


def stored_volume(web_port: int, source: str) -> int:
    """Distinct signals of ``source`` stored, asked through the running worker's API (0 if it does not answer)."""
    status, body = http_json(f"http://127.0.0.1:{web_port}/api/v1/metrics/volume?by=source")
    if status != 200:
        return 0
    return sum(row["n"] for row in body["rows"] if row["source"] == source)


def wait_until(predicate, timeout_s: float, every_s: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"{what} not met within {timeout_s}s")


def settings_of(stack: Stack) -> Settings:
    """The Settings the stack's processes build from their environment."""
    from touchpoint.core.settings import Settings

    values = {key.removeprefix("TOUCHPOINT_").lower(): value for key, value in stack.env.items() if key.startswith("TOUCHPOINT_")}
    return Settings(**values)


def produced_ids(records: list[dict[str, Any]], source: str) -> set[str]:
    from touchpoint.schemas.signal import make_signal_id

    return {make_signal_id(source, str(record["id"])) for record in records}


async def balance_report(stack: Stack, produced: dict[str, set[str]]) -> dict[str, Any]:
    """After every worker stopped: what the store and the dead-letter topic hold for what was produced.

    Computed two ways that must agree: the product's own `dlq balance`
    (pipeline/balance.py) and an independent count from signal ids.
    """
    from touchpoint.pipeline.balance import balance, stored_ids
    from touchpoint.pipeline.dlq import read_letters
    from touchpoint.pipeline.store import Store

    settings = settings_of(stack)
    store = Store.from_settings(settings)
    try:
        all_ids = sorted(set().union(*produced.values()))
        rows = store.query("SELECT signal_id, count() AS copies FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)} "
                           "GROUP BY signal_id", {"ids": all_ids})  # fmt: skip
        letters = await read_letters(settings)
        product = {row.source: row for row in await balance(settings, lambda ids: stored_ids(store, ids))}
    finally:
        store.close()
    stored = {row["signal_id"] for row in rows}
    lettered = {letter.record.get("signal_id") for letter in letters if not letter.replayed} - {None}
    return {
        "stored": stored,
        "doubled": [row["signal_id"] for row in rows if row["copies"] != 1],
        "dead_lettered": lettered,
        "missing": set(all_ids) - stored - lettered,
        "both": stored & lettered,
        "product": product,
    }
