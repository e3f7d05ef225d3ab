import os

import pytest
from pydantic import ValidationError

from touchpoint.core.settings import CONFIG_ENV, ConfigFileError, Settings, mask_url


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("TOUCHPOINT_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    settings = Settings()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.clickhouse_url == "chdb://.touchpoint/clickhouse"


def test_config_file_is_read_and_env_wins(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "touchpoint.yaml"
    config.write_text("topic_raw: brand.raw\nenrich_batch_size: 7\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("TOUCHPOINT_ENRICH_BATCH_SIZE", "9")
    settings = Settings()
    assert settings.topic_raw == "brand.raw"
    assert settings.enrich_batch_size == 9


def test_missing_config_file_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "/nonexistent/touchpoint.yaml")
    with pytest.raises(ConfigFileError, match=f"{CONFIG_ENV}=/nonexistent/touchpoint.yaml: no such file; fix the path"):
        Settings()
    with pytest.raises(ConfigFileError, match="--config nope.yaml: no such file"):  # the flag, named as typed
        Settings.load("nope.yaml")


def test_load_passes_the_config_file_without_touching_the_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    config = tmp_path / "touchpoint.yaml"
    config.write_text("topic_raw: brand.raw\n")
    assert Settings.load(config).topic_raw == "brand.raw"
    assert CONFIG_ENV not in os.environ  # a second Settings in this process is not changed by the first
    assert Settings().topic_raw == "signals.raw"


def test_a_config_file_that_is_not_a_mapping_says_what_it_should_hold(tmp_path) -> None:
    config = tmp_path / "list.yaml"
    config.write_text("- kafka_bootstrap: a:1\n- topic_raw: x\n")
    with pytest.raises(ConfigFileError, match="holds a YAML list, but settings are a mapping"):
        Settings.load(config)


def test_bad_clickhouse_url_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(ValidationError, match="chdb://, http:// or https://"):
        Settings(clickhouse_url="mysql://localhost")


def test_settings_are_frozen_and_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    settings = Settings(clickhouse_url="https://cx:s3cret@ch.example:8443/cx", kafka_sasl_password="pw")
    with pytest.raises(ValidationError):
        settings.topic_raw = "x"  # type: ignore[misc]
    shown = str(settings.describe())
    assert "s3cret" not in shown and "'pw'" not in shown
    assert mask_url("http://a:b@h:1/db") == "http://a:***@h:1/db"
