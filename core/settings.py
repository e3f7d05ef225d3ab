"""One frozen settings object for every Touchpoint process.

Values come from, in order of precedence: keyword arguments, environment
variables prefixed ``TOUCHPOINT_``, an optional YAML config file
(``TOUCHPOINT_CONFIG`` or ``--config``), then the defaults below. Nothing is
read at import time: build a :class:`Settings` at the entry point and pass it
down.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV = "TOUCHPOINT_CONFIG"
# The config file of the Settings being built by Settings.load(), seen by its sources.
# A context variable, not os.environ: building settings never changes the process.
_config_file: ContextVar[tuple[Path, str] | None] = ContextVar("touchpoint_config_file", default=None)


class ConfigFileError(ValueError):
    """The config file is missing or not a mapping of settings; the message names the fix."""


def _config_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource | None:
    """The YAML source for the file given to load() (or TOUCHPOINT_CONFIG), checked before it is read."""
    chosen = _config_file.get()
    if chosen is None and os.environ.get(CONFIG_ENV):
        chosen = (Path(os.environ[CONFIG_ENV]), f"{CONFIG_ENV}={os.environ[CONFIG_ENV]}")
    if chosen is None:
        return None
    path, origin = chosen
    if not path.is_file():
        raise ConfigFileError(f"{origin}: no such file; fix the path or leave it out")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{origin}: not readable YAML ({exc})") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigFileError(
            f"{origin}: holds a YAML {type(data).__name__}, but settings are a mapping of names to values "
            "(for example `kafka_bootstrap: broker:9092`)"
        )
    return YamlConfigSettingsSource(settings_cls, yaml_file=path)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    """Everything a Touchpoint process can be told; immutable once built."""

    model_config = SettingsConfigDict(env_prefix="TOUCHPOINT_", frozen=True, extra="forbid")

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]")
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(None, repr=False)
    topic_raw: str = "signals.raw"
    topic_enriched: str = "signals.enriched"
    topic_dead_letter: str = "signals.dead-letter"
    topic_partitions: int = Field(3, ge=1)
    app_id: str = "touchpoint"
    # Tansu holds a JoinGroup for the whole rebalance timeout; keep it short there.
    kafka_rebalance_timeout_s: float = Field(60.0, gt=0)
    kafka_session_timeout_s: float = Field(60.0, gt=0)
    commit_interval_s: float = Field(1.0, gt=0)

    # ClickHouse
    clickhouse_url: str = "chdb://.touchpoint/clickhouse"
    clickhouse_database: str = "touchpoint"
    store_retry_initial_s: float = Field(0.5, gt=0)
    store_retry_max_s: float = Field(30.0, gt=0)
    store_max_attempts_per_row: int = Field(5, ge=1)

    # Worker
    enrich_batch_size: int = Field(32, ge=1)
    enrich_batch_window_s: float = Field(0.5, gt=0)
    sink_batch_size: int = Field(500, ge=1)
    sink_batch_window_s: float = Field(1.0, gt=0)
    web_enabled: bool = False  # `touchpoint worker` turns it on (faust --with-web): /metrics /healthz /readyz
    web_port: int = 6066
    # /metrics for processes without the worker's web server (`touchpoint connect`); 0 = off.
    metrics_port: int = Field(9464, ge=0, le=65535)
    log_level: str = "warn"

    # Models
    torch_threads: int = Field(0, ge=0, description="0 = torch's default")
    encoder_path: str | None = None
    max_text_tokens: int = Field(256, ge=16)
    encoder_batch_size: int = Field(8, ge=1, description="texts per encoder pass (length-sorted micro-batches)")
    sentiment_head_path: str | None = None
    taxonomy_path: str | None = None
    touchpoint_min_similarity: float | None = None  # None: the calibrated value (models/artifacts/tagging.json)
    touchpoint_max_tags: int = Field(3, ge=1)
    phone_region: str = "US"
    # Any Hugging Face sequence classifier (folder or hub id) instead of the packaged sentiment head,
    # with its labels mapped, e.g. {"LABEL_0": "negative", "LABEL_2": "positive"} (models/hf_sentiment.py).
    sentiment_model: str | None = None
    sentiment_label_map: dict[str, str] | None = None
    # Per-brand sentiment label priors (`touchpoint train priors --brand B`); None: DATA_DIR/sentiment-priors.json.
    sentiment_priors_path: Path | None = None

    # Identity: keyed hash for pseudonymous customer ids (connectors/identity.py).
    customer_id_secret: str = Field("touchpoint-dev-secret-change-me", repr=False)

    # Webhook receiver (connectors/webhooks.py); a tool whose secret is unset is refused
    # unless webhook_allow_unsigned is true (local trials only).
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8088
    webhook_brand: str = "default"
    webhook_max_body_bytes: int = Field(1_048_576, ge=1024)
    webhook_tolerance_s: float = Field(300.0, gt=0, description="max age of a signed timestamp")
    webhook_ack_timeout_s: float = Field(10.0, gt=0, description="wait this long for Kafka, then answer 503")
    webhook_allow_unsigned: bool = False
    typeform_webhook_secret: str | None = Field(None, repr=False)
    formbricks_webhook_secret: str | None = Field(None, repr=False)
    generic_webhook_secret: str | None = Field(None, repr=False)

    # Embedded stack and analysis
    data_dir: Path = Path(".touchpoint")
    min_responses: int = Field(30, ge=1, description="below this a metric is flagged low-confidence")

    @field_validator("clickhouse_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"chdb", "http", "https"}:
            raise ValueError(
                f"TOUCHPOINT_CLICKHOUSE_URL must start with chdb://, http:// or https:// (got {value!r})"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = _config_source(settings_cls)
        return (init_settings, env_settings, config) if config else (init_settings, env_settings)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> "Settings":
        """Build settings at an entry point; ``config_file`` (the --config flag) wins over ``TOUCHPOINT_CONFIG``."""
        chosen = None if config_file is None else (Path(config_file), f"--config {config_file}")
        token = _config_file.set(chosen)
        try:
            return cls(**overrides)
        finally:
            _config_file.reset(token)

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with some fields replaced (settings stay frozen)."""
        return self.model_copy(update=changes)

    def describe(self) -> dict[str, Any]:
        """Settings as a dict that is safe to print (secrets masked)."""
        shown = self.model_dump(mode="json")
        shown["clickhouse_url"] = mask_url(self.clickhouse_url)
        if self.kafka_sasl_password:
            shown["kafka_sasl_password"] = "***"
        shown["customer_id_secret"] = "***"
        for name in ("typeform_webhook_secret", "formbricks_webhook_secret", "generic_webhook_secret"):
            if shown.get(name):
                shown[name] = "***"
        return shown
