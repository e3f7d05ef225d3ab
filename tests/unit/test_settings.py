import pytest
from pydantic import ValidationError

from pipeline.settings import CONFIG_ENV, Settings, mask_url


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
    with pytest.raises(FileNotFoundError, match="fix the path or unset it"):
        Settings()


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
