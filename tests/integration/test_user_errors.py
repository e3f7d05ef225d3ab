"""Every error a user can cause or meet: one or two lines naming the fix, a documented exit code, no traceback.

Run as a user would: `python -m touchpoint ...` in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from touchpoint.core.broker import free_port


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    full = {**base, "TOUCHPOINT_DATA_DIR": str(tmp_path / "data"), "TOUCHPOINT_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
            "TOUCHPOINT_CUSTOMER_ID_SECRET": "user-errors-test-secret-0123", **env}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "touchpoint", *args], env=full, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip


def closed_port() -> str:
    return f"127.0.0.1:{free_port()}"


CASES = {
    "import with no broker": (
        lambda tmp: ["import", str(_file(tmp)), "--channel", "survey", "--source", "s"],
        lambda tmp: {"TOUCHPOINT_KAFKA_BOOTSTRAP": closed_port()}, 3, "TOUCHPOINT_KAFKA_BOOTSTRAP"),
    "worker against a closed port": (
        lambda tmp: ["worker"], lambda tmp: {"TOUCHPOINT_KAFKA_BOOTSTRAP": closed_port()}, 3, "touchpoint up"),
    "unreachable ClickHouse": (
        lambda tmp: ["query", "nps", "--by", "touchpoint"],
        lambda tmp: {"TOUCHPOINT_CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}"}, 4, "TOUCHPOINT_CLICKHOUSE_URL"),
    "missing file": (
        lambda tmp: ["import", str(tmp / "missing.csv"), "--channel", "survey", "--source", "s"],
        lambda tmp: {}, 2, "no such file"),
    "a folder instead of a file": (
        lambda tmp: ["import", str(tmp), "--channel", "survey", "--source", "s"], lambda tmp: {}, 2, "folder"),
    "a YAML config that is a list": (
        lambda tmp: ["--config", str(_yaml(tmp, "- kafka_bootstrap: a:1\n- x: 2\n")), "query", "nps", "--by", "brand"],
        lambda tmp: {}, 2, "mapping"),
    "--config that does not exist": (
        lambda tmp: ["--config", "nope.yaml", "query", "nps", "--by", "brand"], lambda tmp: {}, 2, "--config nope.yaml"),
    "a setting of the wrong type": (
        lambda tmp: ["query", "nps", "--by", "brand"], lambda tmp: {"TOUCHPOINT_ENRICH_BATCH_SIZE": "many"}, 2,
        "enrich_batch_size"),
    "a bad flag value": (lambda tmp: ["query", "nps", "--by", "planet"], lambda tmp: {}, 2, "invalid choice"),
    "a span too long": (lambda tmp: ["query", "nps", "--by", "brand", "--since", "99999999d"], lambda tmp: {}, 2, "span"),
    "a date before 1970": (lambda tmp: ["query", "nps", "--by", "brand", "--since", "0001-01-01"], lambda tmp: {}, 2, "1970"),
    "not a time": (lambda tmp: ["report", "--since", "last tuesday"], lambda tmp: {}, 2, "24h, 7d, 4w"),
    "production without a secret": (
        lambda tmp: ["import", str(_file(tmp)), "--channel", "survey", "--source", "s"],
        lambda tmp: {"TOUCHPOINT_CUSTOMER_ID_SECRET": ""}, 2, "secrets.token_urlsafe"),
}  # fmt: skip


def _file(tmp: Path) -> Path:
    path = tmp / "export.jsonl"
    path.write_text('{"id": "1", "occurred_at": "2026-11-02T10:00:00Z", "nps": 9}\n')
    return path


def _yaml(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_is_one_clear_message_with_its_exit_code(case: str, tmp_path: Path) -> None:
    args, env, code, fix = CASES[case]
    done = run(args(tmp_path), tmp_path, **env(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == code, out
    assert "Traceback" not in out, out
    assert fix in " ".join(out.split()), out
    assert len([line for line in done.stderr.splitlines() if line.strip()]) <= 6, out


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = run(["--debug", "import", str(tmp_path / "missing.csv"), "--channel", "survey", "--source", "s"], tmp_path)
    assert done.returncode != 0 and "Traceback" in done.stderr
