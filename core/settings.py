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
from typing import Any, Literal
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


class MissingSecret(ValueError):
    """A production process started without a secret it needs; the message says how to make one."""


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


# Credentials of the survey and support tools (masked by describe()).
_SOURCE_SECRETS = (
    "surveymonkey_api_secret", "surveymonkey_access_token", "qualtrics_shared_key", "qualtrics_api_token",
    "delighted_api_key", "intercom_client_secret", "intercom_access_token",
)  # fmt: skip


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
    topic_dead_letter_replays: str = "signals.dead-letter.replays"  # which letters `dlq replay` re-drove
    # Kafka's default message limit is 1 MB; a record that would not fit is dead-lettered, not sent.
    max_message_bytes: int = Field(900_000, ge=10_000)
    dead_letter_max_payload_bytes: int = Field(262_144, ge=1_024, description="longer originals are cut (size kept)")
    topic_partitions: int = Field(3, ge=1)
    app_id: str = "touchpoint"
    # Tansu holds a JoinGroup for the whole rebalance timeout; keep it short there.
    kafka_rebalance_timeout_s: float = Field(60.0, gt=0)
    kafka_session_timeout_s: float = Field(60.0, gt=0)
    commit_interval_s: float = Field(1.0, gt=0)
    # /readyz turns false (and TouchpointCommitsStalled fires) when a partition with lag commits nothing this long.
    commit_stall_s: float = Field(120.0, gt=0)
    # A stopping process never waits longer than this for Kafka goodbyes (a gone broker makes them hang).
    shutdown_timeout_s: float = Field(20.0, gt=0)

    # ClickHouse
    clickhouse_url: str = "chdb://.touchpoint/clickhouse"
    clickhouse_database: str = "touchpoint"
    store_retry_initial_s: float = Field(0.5, gt=0)
    store_retry_max_s: float = Field(30.0, gt=0)
    store_max_attempts_per_row: int = Field(5, ge=1)

    # Worker
    # The windows bound how long a batch waits to fill when signals arrive slower than the batch size:
    # ingest-to-queryable latency at part load is about the two windows plus one inference and one insert
    # (bench/e2e.py: p95 1.8 s at half the maximum rate with 0.2/0.3 at load 3, 2.9 s at load 6; 2.9 s with
    # 0.5/1.0 at load 4). Under full load batches fill by size first, so throughput does not depend on them;
    # the cost is more, smaller inserts at part load (at most ~3/s per sink replica).
    # The enrich agent takes up to enrich_take_size messages at once; their texts go to the models
    # enrich_batch_size at a time, each model batch produced as soon as it is enriched (so a full take
    # does not hold texts back), and signals without text go straight through (bench/e2e.py: score-only
    # 1.25-1.5x with takes of 500 rather than 32).
    enrich_batch_size: int = Field(32, ge=1, description="texts per model batch")
    enrich_take_size: int = Field(500, ge=1, description="messages the enrich agent takes at once")
    enrich_batch_window_s: float = Field(0.2, gt=0)
    sink_batch_size: int = Field(500, ge=1)
    sink_batch_window_s: float = Field(0.3, gt=0)
    # Batches worked on at once per agent, released in order (pipeline/acks.py InFlight): the models run on
    # one batch while the broker acknowledges the previous one's outputs, decoding overlaps inserting.
    enrich_batches_in_flight: int = Field(3, ge=1)
    sink_batches_in_flight: int = Field(2, ge=1)
    # Which agents this process runs: enrich (models, no store; scale with the partitions of signals.raw),
    # sink (store, API, routing, alerts; no models) or all (one process). `touchpoint worker --role`.
    worker_role: Literal["all", "enrich", "sink"] = "all"
    web_enabled: bool = False  # `touchpoint worker` turns it on (faust --with-web): /metrics /healthz /readyz
    web_port: int = 6066
    # /metrics for processes without the worker's web server (`touchpoint connect`); 0 = off.
    metrics_port: int = Field(9464, ge=0, le=65535)
    log_level: str = "warn"

    # Models
    torch_threads: int = Field(0, ge=0, description="inference threads (torch and ONNX Runtime); 0 = the CPUs this process is given")
    # The models run in a child process of the worker (pipeline/inference.py): eager torch takes the GIL back
    # between operators, and in the worker's own process it waits for the event loop's threads (bench/e2e.py
    # measures both). false: on a thread of the worker (one process, less memory).
    inference_process: bool = True
    # torch, or ONNX Runtime on a file exported from the same weights at first use (models/onnx_encoder.py,
    # `touchpoint export onnx`): onnx-fp32 gives the same numbers, onnx-int8 is quantised. int8 is the default
    # because the model card measures it within 0.01 of torch on every held-out set (models/quantised_eval.py;
    # tests/unit/test_onnx_encoder.py keeps this default tied to that verdict).
    encoder_backend: Literal["torch", "onnx-fp32", "onnx-int8"] = "onnx-int8"
    onnx_dir: Path | None = None  # where exported encoder files live (named by weights); None: DATA_DIR/models
    encoder_path: str | None = None
    max_text_tokens: int = Field(256, ge=16)
    encoder_batch_size: int = Field(8, ge=1, description="texts per encoder pass (length-sorted micro-batches)")
    sentiment_head_path: str | None = None
    taxonomy_path: str | None = None  # the default taxonomy: a bundled pack name (airline, retail...) or a YAML path
    # brand -> pack name or YAML path, e.g. {"acme_air": "airline"}; other brands get taxonomy_path
    taxonomy_packs: dict[str, str] = Field(default_factory=dict)
    emotions_path: str | None = None  # the brand's emotion descriptions (YAML); None: bundled models/emotions.yaml
    touchpoint_min_similarity: float | None = None  # None: the calibrated value (models/artifacts/tagging.json)
    touchpoint_max_tags: int = Field(3, ge=1)
    phone_region: str = "US"
    # more regions whose national phone formats redaction reads, e.g. [GB, FR]; per brand instead of these
    phone_regions: list[str] = Field(default_factory=list)
    phone_regions_by_brand: dict[str, list[str]] = Field(default_factory=dict)
    # Any Hugging Face sequence classifier (folder or hub id) instead of the packaged sentiment head,
    # with its labels mapped, e.g. {"LABEL_0": "negative", "LABEL_2": "positive"} (models/hf_sentiment.py).
    sentiment_model: str | None = None
    sentiment_label_map: dict[str, str] | None = None
    # Per-brand sentiment label priors (`touchpoint train priors --brand B`); None: DATA_DIR/sentiment-priors.json.
    sentiment_priors_path: Path | None = None

    # Identity: keyed hash for pseudonymous customer ids (connectors/identity.py).
    # Production processes refuse to start without one of their own (demo and up generate one for trials).
    customer_id_secret: str | None = Field(None, repr=False)
    # AES-256-GCM key (32 bytes, base64) sealing raw texts and dead-letter payloads in Kafka
    # (core/sealing.py); unset: derived from customer_id_secret.
    sealing_key: str | None = Field(None, repr=False)

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
    # SurveyMonkey: Sm-Signature is keyed "api_key&api_secret"; the event carries ids only, so the
    # receiver fetches the response with the access token (connectors/surveymonkey.py).
    surveymonkey_api_key: str | None = None
    surveymonkey_api_secret: str | None = Field(None, repr=False)
    surveymonkey_access_token: str | None = Field(None, repr=False)
    surveymonkey_base_url: str = "https://api.surveymonkey.com"
    # Qualtrics event subscriptions: HMAC checked when a shared key is set; responses fetched with
    # the API token from the data center's base URL, e.g. https://iad1.qualtrics.com (connectors/qualtrics.py).
    qualtrics_shared_key: str | None = Field(None, repr=False)
    qualtrics_api_token: str | None = Field(None, repr=False)
    qualtrics_base_url: str | None = None
    # Delighted signs webhooks with the account's API key (connectors/delighted.py).
    delighted_api_key: str | None = Field(None, repr=False)
    # Intercom signs webhooks with the app's client secret; with an access token the receiver
    # fetches the whole conversation (connectors/intercom.py).
    intercom_client_secret: str | None = Field(None, repr=False)
    intercom_access_token: str | None = Field(None, repr=False)
    intercom_base_url: str = "https://api.intercom.io"

    # Closing the loop (pipeline/rules.py, routing.py, actions.py, delivery.py): unset rules = no routing.
    routing_rules_path: str | None = Field(None, description="the routing rules YAML; reloaded when it changes")
    routing_reload_interval_s: float = Field(5.0, gt=0, description="how often the rules file is checked for edits")
    topic_actions: str = "cx.actions"
    route_batch_size: int = Field(500, ge=1)
    route_batch_window_s: float = Field(1.0, gt=0)
    actions_batch_size: int = Field(100, ge=1)
    actions_batch_window_s: float = Field(1.0, gt=0)
    # Destination URLs and HMAC secrets by destination name (JSON in the environment); they win over
    # `url:` in the rules file, so incoming-webhook URLs (which are credentials) stay out of it.
    routing_destination_urls: dict[str, str] = Field(default_factory=dict, repr=False)
    routing_destination_secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    api_public_url: str = Field("http://127.0.0.1:6066", description="base of links in case messages (the worker's API)")
    delivery_max_attempts: int = Field(8, ge=1)
    delivery_retry_initial_s: float = Field(1.0, gt=0)
    delivery_retry_max_s: float = Field(60.0, gt=0)
    delivery_max_retry_after_s: float = Field(300.0, gt=0, description="longer Retry-After waits count as a failure")
    delivery_max_elapsed_s: float = Field(900.0, gt=0, description="give up (dead-letter) a delivery after this long")
    loop_metrics_interval_s: float = Field(30.0, gt=0, description="how often the case gauges are read from ClickHouse")
    loop_metrics_window_days: int = Field(30, ge=1, description="cases opened this recently feed medians and close rate")

    # Embedded stack and analysis
    data_dir: Path = Path(".touchpoint")
    min_responses: int = Field(30, ge=1, description="below this a metric is flagged low-confidence")

    # Alerts (pipeline/alerts): drops and spikes per brand, brand x channel, brand x touchpoint
    alert_window_h: float = Field(24.0, gt=0, le=168, description="window of the rate and score tests (sentiment, NPS, CSAT, emotions)")
    alert_volume_window_h: float = Field(3.0, gt=0, le=168, description="window of the volume spike/drop tests")
    alert_baseline: Literal["weekly", "trailing"] = Field(
        "weekly", description="weekly: the same hours of the K weeks before; trailing: the K windows just before"
    )
    alert_baseline_windows: int = Field(4, ge=1, le=12, description="K, baseline windows per test")
    alert_min_baseline_windows: int = Field(2, ge=1, description="fewer baseline windows with data: no test")
    alert_min_n: int = Field(30, ge=1, description="fewest responses (or expected signals, for volume) a test needs")
    alert_false_alarms_per_week: float = Field(0.5, gt=0, description="budget across all series; sets the per-evaluation FDR")
    alert_step_min: float = Field(15.0, gt=0, description="windows end on this grid; one evaluation per step")
    alert_settle_min: float = Field(10.0, ge=0, description="leave out the newest minutes (signals still arriving)")
    alert_resolve_p: float = Field(0.05, gt=0, lt=1, description="an open alert resolves when its p-value rises above this")
    alert_volume_min_cv: float = Field(0.1, ge=0, description="least week-to-week variation of a window's volume (CV)")
    alert_rate_min_sd: float = Field(2.0, ge=0, description="least week-to-week variation of a share or score, in points")
    alert_emotions: list[str] = Field(["anger", "urgency"], description="emotions whose rising share alerts")
    alert_interval_s: float = Field(300.0, gt=0, description="how often `touchpoint watch` / the worker timer look")
    alert_watch_in_worker: bool = False  # the worker runs the detector on a timer (leader only)
    alert_team: str = Field("cx-insights", min_length=1, description="gets alerts no routing rule (nor default) takes")
    alert_sla_h: float = Field(24.0, gt=0, description="SLA of an alert's case when no routing rule sets one")

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

    def require_customer_id_secret(self) -> str:
        """The secret, or a :class:`MissingSecret` that says how to set one."""
        if not self.customer_id_secret or len(self.customer_id_secret) < 16:
            raise MissingSecret(
                "TOUCHPOINT_CUSTOMER_ID_SECRET is not set (or shorter than 16 characters): customer ids and sealed "
                "texts need a secret of this deployment's own. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` and keep it with your other secrets "
                "(the same value on every process)."
            )
        return self.customer_id_secret

    def describe(self) -> dict[str, Any]:
        """Settings as a dict that is safe to print (secrets masked)."""
        shown = self.model_dump(mode="json")
        shown["clickhouse_url"] = mask_url(self.clickhouse_url)
        if self.kafka_sasl_password:
            shown["kafka_sasl_password"] = "***"
        for name in ("customer_id_secret", "sealing_key"):
            if shown.get(name):
                shown[name] = "***"
        for name in ("typeform_webhook_secret", "formbricks_webhook_secret", "generic_webhook_secret", *_SOURCE_SECRETS):
            if shown.get(name):
                shown[name] = "***"
        for name in ("routing_destination_urls", "routing_destination_secrets"):
            shown[name] = {key: "***" for key in shown.get(name) or {}}
        return shown
