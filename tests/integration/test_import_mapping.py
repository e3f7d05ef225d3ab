"""`touchpoint import --map ...`: an export in its own column names into the real broker; `--dry-run` sends nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.test_mapping import ISSUE_MAP, survey_export
from touchpoint.cli import main
from touchpoint.connectors.testing import read_topic
from touchpoint.core.identity import pseudonymize
from touchpoint.core.settings import Settings


@pytest.fixture
def env(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("kafka_bootstrap", "topic_raw", "topic_dead_letter", "customer_id_secret"):
        monkeypatch.setenv(f"TOUCHPOINT_{name.upper()}", str(getattr(live_settings, name)))
    return live_settings


def maps() -> list[str]:
    return [arg for option in ISSUE_MAP for arg in ("--map", option)]


def test_a_survey_export_imports_with_a_field_mapping(env: Settings, tmp_path: Path, capsys) -> None:
    code = main(["import", str(survey_export(tmp_path)), "--channel", "survey", "--source", "acme-survey", "--brand", "acme", *maps()])
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "read 5 / produced 2 / dead-lettered 2 / skipped as duplicates 1" in out
    raw = {r["source_id"]: (key, r) for key, r in asyncio.run(read_topic(env, env.topic_raw, "raw_signal"))}
    key, first = raw["r-1"]
    assert first["score"]["metric"] == "nps" and first["text"] == "Fast delivery."
    assert first["customer_id"] == pseudonymize("email", "ann.smith@example.com", env.customer_id_secret)
    assert key == first["customer_id"].encode()
    letters = asyncio.run(read_topic(env, env.topic_dead_letter, "dead_letter"))
    reasons = sorted(letter["reason"] for _, letter in letters)
    assert "outside its scale" in reasons[0] and "(id) is empty" in reasons[1], reasons
    assert all(b"r-3" in letter["payload"] or b"No id" in letter["payload"] for _, letter in letters)  # the row itself


def test_dry_run_prints_mapped_records_and_would_be_dead_letters_and_sends_nothing(env: Settings, tmp_path: Path, capsys) -> None:
    args = ["import", str(survey_export(tmp_path)), "--channel", "survey", "--source", "acme-survey", *maps(), "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert '"source_id": "r-1"' in out and '"metric": "nps"' in out
    assert "record 3: connector.validate: column 'nps'" in out and "record 4: connector.validate" in out
    assert "columns not mapped (ignored): first_name" in out
    assert "read 5 / would produce 2 / would dead-letter 2 / duplicates 1" in " ".join(out.split())
    assert "ann.smith" not in out.lower()
    assert asyncio.run(read_topic(env, env.topic_raw, "raw_signal")) == []
    assert asyncio.run(read_topic(env, env.topic_dead_letter, "dead_letter")) == []


def test_a_wrong_mapping_is_a_clear_error_not_a_traceback(env: Settings, tmp_path: Path, capsys) -> None:
    code = main(["import", str(survey_export(tmp_path)), "--channel", "survey", "--source", "s", "--map", "csat=nps:0-10"])
    assert code == 2
    assert "mapping error" in capsys.readouterr().err
