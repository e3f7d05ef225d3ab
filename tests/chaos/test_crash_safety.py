"""Crash safety with real processes: produced = stored + dead-lettered, whatever is killed or taken away.

Each test runs the real embedded broker, real `touchpoint worker` processes
and real `touchpoint import` processes on their own topics and chdb folder
(tests/chaos/harness.py), kills them with SIGKILL at chosen points or takes
the store or the broker away, lets the system recover, and then checks, from
the store and the dead-letter topic themselves, that every produced signal
is stored exactly once or dead-lettered, none both, none twice. The last
test is the negative control: a worker that commits before it inserts makes
the same check fail.

`make chaos` runs these with more kill rounds (TOUCHPOINT_CHAOS_ROUNDS).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.chaos.harness import (
    Stack,
    balance_report,
    http_json,
    produced_ids,
    signal_lines,
    stored_volume,
    wait_until,
)
from tests.faults import unwritable
from touchpoint.core.broker import free_port
from touchpoint.samples import sample_path

TEXTS = [json.loads(line)["text"] for line in sample_path("demo_signals.jsonl").read_text().splitlines()][:120]
ROUNDS = int(os.environ.get("TOUCHPOINT_CHAOS_ROUNDS", "2"))
START_S = 180  # a worker loads the models before it consumes; CI machines are slow


def kill(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def sample(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


async def assert_balanced(stack: Stack, produced: dict[str, set[str]]) -> dict:
    report = await balance_report(stack, produced)
    assert not report["missing"], f"lost: {len(report['missing'])} produced signals neither stored nor dead-lettered"
    assert not report["doubled"], f"stored more than once: {report['doubled'][:5]}"
    assert not report["both"], f"stored and dead-lettered: {sorted(report['both'])[:5]}"
    for source in produced:  # the product's own balance agrees
        row = report["product"][source]
        assert row.balanced and row.in_flight == 0, row.row()
    return report


async def test_workers_killed_at_10_50_90_percent_and_at_random_lose_and_double_nothing(stack: Stack) -> None:
    records = signal_lines("k", 240, TEXTS) + [{"id": "k-bad", "text": "no time"}]  # one invalid record
    stack.run_import(stack.write_file("kill.jsonl", records), source="kill")
    port = free_port()
    worker = stack.start_worker(port)
    for fraction in (0.1, 0.5, 0.9):
        wait_until(lambda: stored_volume(port, "kill") >= fraction * 240, START_S, what=f"{fraction:.0%} stored")
        kill(worker)
        worker = stack.start_worker(port)
    rng = random.Random(7)
    for _ in range(ROUNDS):
        wait_until(lambda: http_json(f"http://127.0.0.1:{port}/healthz")[0] == 200, START_S, what="worker up")
        time.sleep(rng.uniform(0.5, 4.0))
        kill(worker)
        worker = stack.start_worker(port)
    wait_until(lambda: stored_volume(port, "kill") >= 240, START_S, what="all stored")
    stack.stop_workers()
    signals = [r for r in records if "occurred_at" in r]  # the bad record never became a signal...
    report = await assert_balanced(stack, {"kill": produced_ids(signals, "kill")})
    assert len(report["stored"]) == 240
    assert report["product"]["kill"].dead_lettered_open == 1  # ...it is the one connector dead letter


async def test_an_importer_killed_halfway_and_run_again_balances(stack: Stack) -> None:
    records = signal_lines("i", 2000, TEXTS[:20])
    for record in records[200:]:  # mostly score-only: the point is the importer, not the models
        record.pop("text", None)
        record.setdefault("nps", 7)
    path = stack.write_file("big.jsonl", records)
    importer = stack.start_import(path, source="half")
    wait_until(lambda: raw_count(stack) > 0, 60, every_s=0.05, what="the import started producing")
    kill(importer)  # part of the file is in Kafka, part not
    assert raw_count(stack) < len(records), "the importer was killed after it finished: no test"
    port = free_port()
    stack.start_worker(port)
    out = stack.run_import(path, source="half")  # the user runs it again
    assert "produced 2000" in " ".join(out.split()), out
    wait_until(lambda: stored_volume(port, "half") >= 2000, 420, what="all stored")
    stack.stop_workers()
    await assert_balanced(stack, {"half": produced_ids(records, "half")})


def raw_count(stack: Stack) -> int:
    from tests.chaos.harness import settings_of
    from touchpoint.core.kafka import topic_message_count

    with ThreadPoolExecutor(1) as pool:  # the test's own event loop runs: count on another one
        return pool.submit(asyncio.run, topic_message_count(settings_of(stack), stack.env["TOUCHPOINT_TOPIC_RAW"])).result()


async def test_a_store_outage_is_waited_out_and_every_metric_counts_each_signal_once(stack: Stack) -> None:
    first, during = signal_lines("s", 60, TEXTS), signal_lines("t", 90, TEXTS)
    port = free_port()
    stack.start_worker(port)
    stack.run_import(stack.write_file("first.jsonl", first), source="outage")
    wait_until(lambda: stored_volume(port, "outage") >= 60, START_S, what="first part stored")
    with unwritable(signals_folder(stack)):  # the disk refuses the signals table's new parts
        stack.run_import(stack.write_file("during.jsonl", during), source="outage")

        def store_not_ready() -> str | None:
            status, body = http_json(f"http://127.0.0.1:{port}/readyz")
            return body["checks"]["store"]["detail"] if status == 503 and not body["checks"]["store"]["ok"] else None

        detail = wait_until(store_not_ready, 120, what="readiness says the store fails")
        assert "sink failing" in detail
        time.sleep(3)
    wait_until(lambda: stored_volume(port, "outage") >= 150, 180, what="everything stored after the outage")
    exposition = metrics_text(port)
    assert sample(exposition, "touchpoint_sink_insert_failures_total") > 0  # it did fail, and retried
    assert sample(exposition, "touchpoint_dead_letters_total") == 0
    assert sample(exposition, "touchpoint_enrich_events_in_total") == 150  # each signal once, retries or not
    assert sample(exposition, "touchpoint_enrich_events_out_total") == 150
    assert sample(exposition, "touchpoint_sink_rows_inserted_total") == 150
    stack.stop_workers()
    await assert_balanced(stack, {"outage": produced_ids(first, "outage") | produced_ids(during, "outage")})


def signals_folder(stack: Stack) -> Path:
    """The signals table's data folder, from chdb's own metadata (ATTACH TABLE _ UUID '...')."""
    engine = stack.root / "clickhouse"
    database = stack.env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    uuid = (engine / "metadata" / database / "signals.sql").read_text().split("'")[1]
    return engine / "store" / uuid[:3] / uuid


async def test_a_broker_restart_is_survived_with_one_clear_line_and_new_signals_flow(stack: Stack) -> None:
    port = free_port()
    worker = stack.start_worker(port)
    before = signal_lines("b", 150, TEXTS)
    stack.run_import(stack.write_file("before.jsonl", before), source="before")
    wait_until(lambda: stored_volume(port, "before") >= 30, START_S, what="some stored")
    stack.kill_broker()  # memory storage: everything in it is gone
    time.sleep(2)
    stack.start_broker()
    after = signal_lines("a", 120, TEXTS)
    stack.run_import(stack.write_file("after.jsonl", after), source="after")
    wait_until(lambda: stored_volume(port, "after") >= 120, 240, what="every signal after the restart stored")
    wait_until(lambda: http_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, 120, what="ready again")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    assert time.monotonic() - started < 45, "the worker must stop on SIGTERM"
    logs = stack.worker_logs()
    assert "lost its state" in logs and "recreate the topics" in logs
    assert logs.count("OffsetCommit failed") < 50, "no commit-error storm"
    stack.stop_workers()
    # the new broker's topics hold only what came after: it balances
    await assert_balanced(stack, {"after": produced_ids(after, "after")})


async def test_negative_control_a_worker_that_commits_before_inserting_is_caught(stack: Stack) -> None:
    records = signal_lines("n", 90, TEXTS)
    stack.run_import(stack.write_file("neg.jsonl", records), source="neg")
    port = free_port()
    unsafe = stack.start_worker(port, module="tests.chaos.unsafe_worker")

    def sink_committed() -> bool:
        text = metrics_text(port) if http_json(f"http://127.0.0.1:{port}/healthz")[0] == 200 else ""
        return sample(text, "touchpoint_enrich_events_out_total") >= 90

    wait_until(sink_committed, START_S, what="enriched")
    time.sleep(4)  # the unsafe sink committed its batches (every second) and inserted nothing
    kill(unsafe)
    safe = stack.start_worker(port)
    time.sleep(20)  # the safe worker resumes from the committed offsets: past the rows never inserted
    del safe
    stack.stop_workers()
    report = await balance_report(stack, {"neg": produced_ids(records, "neg")})
    assert report["missing"], "the check must see signals that a commit-before-insert worker lost"
