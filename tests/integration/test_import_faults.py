"""An import never stops at one record and always ends with its summary; a re-import adds no letter twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from touchpoint.cli import main
from touchpoint.connectors.testing import read_topic
from touchpoint.core.settings import Settings
from touchpoint.pipeline import dlq

SIX_MIB = 6 * 1024 * 1024


def env_for(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("kafka_bootstrap", "topic_raw", "topic_dead_letter", "topic_dead_letter_replays", "customer_id_secret"):
        monkeypatch.setenv(f"TOUCHPOINT_{name.upper()}", str(getattr(settings, name)))


def write_export(path: Path) -> None:
    lines = [
        {"id": "ok-1", "occurred_at": "2026-11-02T10:00:00Z", "text": "Quick refund, thank you."},
        {"id": "huge-comment", "occurred_at": "2026-11-02T10:01:00Z", "text": "slow " * (SIX_MIB // 5)},
        {"id": "huge-attribute", "occurred_at": "2026-11-02T10:02:00Z", "nps": 3, "notes": "n" * 2_000_000},
        {"id": "ok-2", "occurred_at": "2026-11-02T10:03:00Z", "nps": 9},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{not json\n")


def test_oversize_records_are_dead_lettered_cut_and_the_rest_flows(
    live_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_for(live_settings, monkeypatch)
    export = tmp_path / "export.jsonl"
    write_export(export)
    for _ in range(2):  # the same import twice: a user retrying
        assert main(["import", str(export), "--channel", "survey", "--source", "survey_tool", "--brand", "acme"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "read 5 / produced 2 / dead-lettered 3 / skipped as duplicates 0" in out, out

    raw = asyncio.run(read_topic(live_settings, live_settings.topic_raw, "raw_signal"))
    assert sorted({r["source_id"] for _, r in raw}) == ["ok-1", "ok-2"]
    letters = asyncio.run(dlq.read_letters(live_settings))
    assert len(letters) == 3, "a re-import must not list the same failures twice"
    by_reason = {letter.record["reason"][:40]: letter.record for letter in letters}
    huge = next(r for reason, r in by_reason.items() if "over the 20000 limit" in r["reason"])
    assert huge["payload_truncated"] and huge["payload_size"] > SIX_MIB
    assert any("message limit" in r["reason"] for r in by_reason.values())
    assert any("not valid JSON" in r["reason"] for r in by_reason.values())
    assert all(r["source"] == "survey_tool" and r["origin"] == "file:export.jsonl" for r in by_reason.values())


def test_an_import_without_a_broker_says_so_with_its_summary(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from touchpoint.core.broker import free_port

    env_for(settings.with_overrides(kafka_bootstrap=f"127.0.0.1:{free_port()}"), monkeypatch)
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"id": "a", "occurred_at": "2026-11-02T10:00:00Z", "nps": 9}) + "\n")
    code = main(["import", str(export), "--channel", "survey", "--source", "s"])
    out = capsys.readouterr()
    assert code != 0 and "Traceback" not in out.out + out.err
    assert "TOUCHPOINT_KAFKA_BOOTSTRAP" in out.out + out.err
