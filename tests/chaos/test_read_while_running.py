"""Reading commands work while a stack holds the store, with the same output as when it is stopped.

A worker process (with its web server) holds the chdb folder; `query`,
`journey`, `report`, `dlq balance` and `cases list` run as separate processes
and get their answers through the worker's API; then the worker stops and the
same commands open the folder themselves. The outputs must be identical.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.chaos.harness import Stack, http_json, signal_lines, stored_volume, wait_until
from touchpoint.core.broker import free_port
from touchpoint.core.identity import Identity

from .test_crash_safety import START_S, TEXTS


def touchpoint(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "touchpoint", *args], env=stack.env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def report_payload(stack: Stack, name: str) -> dict:
    done = touchpoint(stack, "report", "--out", str(stack.root / name))
    assert done.returncode == 0, done.stdout + done.stderr
    html = (stack.root / name).read_text()
    payload = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S)[1])
    payload.pop("generated_at")
    return payload


def outputs(stack: Stack, customer: str) -> dict:
    commands = {
        "query": ("query", "nps", "--by", "touchpoint", "--format", "json"),
        "query-compare": ("query", "sentiment", "--by", "channel", "--since", "2026-11-05", "--compare", "--format", "json"),
        "journey": ("journey", customer, "--format", "json"),
        "cases": ("cases", "list", "--format", "json"),
        "balance": ("dlq", "balance", "--format", "json"),
    }
    found = {}
    for name, args in commands.items():
        done = touchpoint(stack, *args)
        assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), (name, done.stderr)
        found[name] = done.stdout
    found["report"] = report_payload(stack, "report.html")
    return found


def test_reading_commands_answer_the_same_while_the_stack_runs(stack: Stack) -> None:
    records = signal_lines("r", 60, TEXTS)
    for record in records[:5]:
        record["email"] = "reader@example.org"
    port = free_port()
    stack.start_worker(port)
    wait_until(lambda: http_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, START_S, what="worker ready")
    path = stack.write_file("read.jsonl", records + [{"id": "r-bad", "text": "no time"}])
    done = touchpoint(stack, "import", str(path), "--channel", "survey", "--source", "read", "--wait")
    said = " ".join(done.stdout.split())
    assert done.returncode == 0 and "stored 60 / dead-lettered 0 in the worker (+ 1 at import)" in said, done.stdout + done.stderr
    assert stored_volume(port, "read") == 60  # --wait returned when they were all there
    customer = Identity(stack.env["TOUCHPOINT_CUSTOMER_ID_SECRET"]).of("email", "reader@example.org")
    while_running = outputs(stack, customer)
    stack.stop_workers()
    stopped = outputs(stack, customer)
    for name in stopped:
        assert while_running[name] == stopped[name], f"{name} differs while the stack runs"
    assert json.loads(stopped["journey"]) and json.loads(stopped["query"])  # real answers, not empty ones
