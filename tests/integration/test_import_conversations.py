"""`touchpoint import --format zendesk`: a real help-desk export into the real broker, with its summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from touchpoint.cli import main
from touchpoint.connectors.testing import read_topic
from touchpoint.core.identity import is_pseudonymous
from touchpoint.core.settings import Settings

EXPORT = Path(__file__).parents[1] / "fixtures" / "zendesk_incremental_export.json"


def test_zendesk_export_imports_one_signal_per_conversation(
    live_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("kafka_bootstrap", "topic_raw", "topic_dead_letter", "customer_id_secret"):
        monkeypatch.setenv(f"TOUCHPOINT_{name.upper()}", str(getattr(live_settings, name)))
    code = main(["import", str(EXPORT), "--channel", "chat", "--source", "zendesk", "--format", "zendesk", "--brand", "acme"])
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "read 4 / produced 2 / dead-lettered 1 / skipped as duplicates 1" in out

    raw = asyncio.run(read_topic(live_settings, live_settings.topic_raw, "raw_signal"))
    by_id = {record["source_id"]: (key, record) for key, record in raw}
    assert set(by_id) == {"35436", "35437"} and len(raw) == 2
    key, chat = by_id["35436"]
    assert chat["channel"] == "chat" and chat["kind"] == "direct" and chat["brand"] == "acme"
    assert "Let me check" not in chat["text"] and chat["attributes"]["agent_name"] == "Kim Agent"
    assert chat["score"]["metric"] == "csat" and chat["score"]["value"] == 1.0
    assert is_pseudonymous(chat["customer_id"]) and key == chat["customer_id"].encode()
    [(_, letter)] = asyncio.run(read_topic(live_settings, live_settings.topic_dead_letter, "dead_letter"))
    assert letter["stage"] == "connector.validate" and "neither text nor score" in letter["reason"]
