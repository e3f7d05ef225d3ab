"""Every Prometheus metric Touchpoint exports, in one place (prometheus-client).

Why one module: the names are an interface ops alert on (deploy/prometheus/
alerts.yml, deploy/grafana/), so they are defined once and imported by the code
that moves them. Conventions: ``touchpoint_`` prefix, base units in the name
(``_seconds``), counters end in ``_total``, and every label has a small,
bounded set of values — a connector *name* from the config file, a tool name,
a status class, a stage, a reason class, a topic/partition. Never a customer
id, a signal id or free text (use :func:`reason_class` for error reasons).

All metrics live in the default registry, which also carries the process and
Python GC collectors. Serve them with :func:`add_metrics_route` on an aiohttp
app (the Faust worker's web server, the webhook receiver, `touchpoint
connect`'s ops server).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import CollectorRegistry

# One call to a model or the store: 5 ms (a small insert) to 30 s (a large batch on a busy CPU).
CALL_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# --- connectors (the connector framework increments these) -------------------------
CONNECTOR_RECORDS_READ = Counter(
    "touchpoint_connector_records_read_total",
    "Records a connector read from its source, before validation.",
    ["connector"],
)
CONNECTOR_RECORDS_PRODUCED = Counter(
    "touchpoint_connector_records_produced_total",
    "Raw signals a connector produced to Kafka and the broker acknowledged.",
    ["connector"],
)
CONNECTOR_RECORDS_DEAD_LETTERED = Counter(
    "touchpoint_connector_records_dead_lettered_total",
    "Records a connector could not parse or validate and sent to the dead-letter topic.",
    ["connector"],
)
CONNECTOR_HTTP_REQUESTS = Counter(
    "touchpoint_connector_http_requests_total",
    "HTTP requests a polling connector made, by status class (2xx..5xx, or 'error' for no response).",
    ["connector", "status_class"],
)
CONNECTOR_RATE_LIMIT_WAITS = Counter(
    "touchpoint_connector_rate_limit_waits_total",
    "Times a connector paused because the source rate-limited it (429/Retry-After) or its own budget ran out.",
    ["connector"],
)
CONNECTOR_RATE_LIMIT_WAIT_SECONDS = Counter(
    "touchpoint_connector_rate_limit_wait_seconds_total",
    "Seconds a connector spent waiting on rate limits.",
    ["connector"],
)
CONNECTOR_ERRORS = Counter(
    "touchpoint_connector_errors_total",
    "Failed connector passes by kind: configuration (the connector stops; fix and restart), transient (retried), "
    "bug (retried, traceback logged).",
    ["connector", "kind"],
)
CONNECTOR_PAGE_TOKEN_RESETS = Counter(
    "touchpoint_connector_page_token_resets_total",
    "Times a source refused a saved page token (expired) and the pass started again from the newest item.",
    ["connector"],
)
CONNECTOR_LAST_CHECKPOINT = Gauge(
    "touchpoint_connector_last_checkpoint_timestamp_seconds",
    "Unix time of a connector's last saved checkpoint; alert on time() minus this (checkpoint age).",
    ["connector"],
)

# --- webhook receiver ---------------------------------------------------------------------
WEBHOOK_REQUESTS = Counter(
    "touchpoint_webhook_requests_total",
    "Webhook deliveries received, by tool (the route's configured tool name) and response status class.",
    ["tool", "status_class"],
)

# --- enrichment (pipeline/enrichment.py) ---------------------------------------------------
ENRICH_EVENTS_IN = Counter(
    "touchpoint_enrich_events_in_total",
    "Raw messages the enrich agent took from signals.raw.",
)
ENRICH_EVENTS_OUT = Counter(
    "touchpoint_enrich_events_out_total",
    "Enriched signals the enrich agent produced to signals.enriched.",
)
ENRICH_BATCH_SIZE = Histogram(
    "touchpoint_enrich_batch_size_events",
    "Messages per enrich batch (take_events); small batches under load mean the window is too short.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
ENRICH_INFERENCE_SECONDS = Histogram(
    "touchpoint_enrich_inference_seconds",
    "Seconds the models took for one batch (on the inference thread).",
    buckets=CALL_SECONDS_BUCKETS,
)
ENRICH_FAILURES = Counter(
    "touchpoint_enrich_failures_total",
    "Records the enrich stage could not handle, by stage: decode, validate, enrich.",
    ["stage"],
)
ENRICH_TEXTS_TRUNCATED = Counter(
    "touchpoint_enrich_texts_truncated_total",
    "Texts longer than max_text_tokens; the encoder saw only their first max_text_tokens tokens.",
)

# --- sink (pipeline/sink.py) ---------------------------------------------------------------
SINK_ROWS_INSERTED = Counter(
    "touchpoint_sink_rows_inserted_total",
    "Rows ClickHouse accepted into the signals table (redeliveries included).",
)
SINK_INSERT_BATCHES = Counter(
    "touchpoint_sink_insert_batches_total",
    "Successful INSERTs into the signals table.",
)
SINK_INSERT_SECONDS = Histogram(
    "touchpoint_sink_insert_seconds",
    "Seconds one INSERT attempt took, successful or not.",
    buckets=CALL_SECONDS_BUCKETS,
)
SINK_INSERT_RETRIES = Counter(
    "touchpoint_sink_insert_retries_total",
    "Store calls retried after backoff (every failure that is not bad rows).",
)
SINK_INSERT_FAILURES = Counter(
    "touchpoint_sink_insert_failures_total",
    "Failed store calls by what the error code means (pipeline/store_errors.py): retry (store down, full, "
    "overloaded, unknown error: retried), configuration (unknown table, credentials: retried, fix needed), "
    "bad_rows (ClickHouse refused rows as data: bisected, the row at fault dead-lettered).",
    ["kind"],
)

# --- end to end and the worker ---------------------------------------------------------------
END_TO_END_SECONDS = Histogram(
    "touchpoint_end_to_end_seconds",
    "Seconds from a signal's ingested_at (connector) to its row being stored in ClickHouse.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
CONSUMER_LAG = Gauge(
    "touchpoint_consumer_lag_messages",
    "Messages behind the end of the partition (highwater minus committed offset) for partitions this worker owns.",
    ["topic", "partition"],
)
COMMIT_STALL_SECONDS = Gauge(
    "touchpoint_consumer_commit_stall_seconds",
    "Seconds since this partition's committed offset last moved while it had lag (0 when moving or caught up).",
    ["topic", "partition"],
)
CONSUMER_LOG_RESETS = Counter(
    "touchpoint_consumer_log_resets_total",
    "Times the broker was found to have lost its state (topics gone, offsets beyond the log end) and the worker "
    "recreated the topics and rejoined its group (pipeline/broker_reset.py).",
)
DEAD_LETTERS = Counter(
    "touchpoint_dead_letters_total",
    "Dead letters sent, by stage and reason class (see touchpoint.core.metrics.reason_class).",
    ["stage", "reason_class"],
)
BATCH_RETRIES = Counter(
    "touchpoint_batch_retries_total",
    "Times an agent retried a failed batch in place (its offsets held until it succeeds), by agent.",
    ["agent"],
)
COMPONENT_FAILING = Gauge(
    "touchpoint_component_failing",
    "1 while a part of the process is retrying a failure (store, enrich_batch, sink_batch, a connector...), else 0; "
    "/readyz says why.",
    ["component"],
)
BUILD_INFO = Gauge(
    "touchpoint_build_info",
    "Always 1; labels carry the package version and the loaded model version ('none' until loaded).",
    ["version", "model_version"],
)

# --- closing the loop (pipeline/routing.py, pipeline/actions.py, pipeline/loop_metrics.py) -----------
# Case metrics carry the labels team and priority only (teams come from the rules file: a small set).
ROUTING_RULES_RELOADS = Counter(
    "touchpoint_routing_rules_reloads_total",
    "Routing rules files read: ok (now in force) or error (the previous rules stay in force; see the log).",
    ["result"],
)
ROUTE_SIGNALS = Counter(
    "touchpoint_route_signals_total",
    "Enriched signals the route agent evaluated against the rules (redeliveries included).",
)
ACTIONS_ROUTED = Counter(
    "touchpoint_actions_routed_total",
    "Actions the route agent produced to cx.actions and the broker acknowledged.",
    ["team", "priority"],
)
CASES_OPENED = Counter(
    "touchpoint_cases_opened_total",
    "Cases opened in ClickHouse by new actions.",
    ["team", "priority"],
)
CASE_SIGNALS_ATTACHED = Counter(
    "touchpoint_case_signals_attached_total",
    "Actions attached to a case already open for the same customer, team and touchpoint (no second case).",
    ["team", "priority"],
)
DELIVERIES = Counter(
    "touchpoint_deliveries_total",
    "Case notifications sent to HTTP destinations, by outcome: delivered, or failed (dead-lettered with the reason).",
    ["outcome"],
)
DELIVERY_RETRIES = Counter(
    "touchpoint_delivery_retries_total",
    "Delivery attempts repeated after a 5xx, a timeout or a 429 (Retry-After honoured).",
)
CASES_OPEN = Gauge(
    "touchpoint_cases_open",
    "Cases open or acknowledged now (from ClickHouse; every worker reports the same numbers: aggregate with max).",
    ["team", "priority"],
)
CASES_SLA_BREACHED = Gauge(
    "touchpoint_cases_sla_breached",
    "Cases still open past their SLA due time now (from ClickHouse; aggregate with max).",
    ["team", "priority"],
)
CASES_MEDIAN_ACK_SECONDS = Gauge(
    "touchpoint_cases_median_time_to_acknowledge_seconds",
    "Median seconds from opening to acknowledgement, cases opened in the loop-metrics window.",
    ["team", "priority"],
)
CASES_MEDIAN_CLOSE_SECONDS = Gauge(
    "touchpoint_cases_median_time_to_close_seconds",
    "Median seconds from opening to closing, cases opened in the loop-metrics window.",
    ["team", "priority"],
)
LOOP_CLOSE_RATE = Gauge(
    "touchpoint_loop_close_rate_ratio",
    "Close-the-loop rate: cases closed within their SLA / cases routed, opened in the loop-metrics window.",
    ["team", "priority"],
)

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
REASON_CLASSES = ("undecodable", "invalid", "enrichment_error", "rejected_by_store", "delivery_failed", "other")
_REASON_BY_ERROR = {
    "DecodeError": "undecodable",
    "JSONDecodeError": "undecodable",
    "UnicodeDecodeError": "undecodable",
    "InvalidSignal": "invalid",
    "ValidationError": "invalid",
    "Invalid": "invalid",
    "StoreError": "rejected_by_store",
}
_REASON_BY_STAGE = {
    "connector.parse": "undecodable",
    "decode": "undecodable",
    "connector.validate": "invalid",
    "validate": "invalid",
    "enrich": "enrichment_error",
    "store": "rejected_by_store",
    "deliver": "delivery_failed",
}


def status_class(status: int | None) -> str:
    """'2xx'..'5xx' for an HTTP status, 'error' when there was no response (timeout, refused)."""
    if status is None or not 200 <= status < 600:
        return "error"
    return f"{status // 100}xx"


def reason_class(stage: str, error_type: str | None) -> str:
    """A bounded class for a dead letter's reason: by error type first, else by stage."""
    return _REASON_BY_ERROR.get(error_type or "") or _REASON_BY_STAGE.get(stage, "other")


def count_dead_letters(letters: Any) -> None:
    """Count dead-letter records (dicts from touchpoint.core.deadletter.dead_letter) once they are sent."""
    for letter in letters:
        DEAD_LETTERS.labels(letter["stage"], reason_class(letter["stage"], letter.get("error_type"))).inc()


def package_version() -> str:
    try:
        return metadata.version("touchpoint")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def set_build_info(model_version: str | None = None) -> None:
    """Publish the build; call again with the model version once the models are loaded."""
    BUILD_INFO.clear()
    BUILD_INFO.labels(package_version(), model_version or "none").set(1)


def metrics_response(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The text exposition and its Content-Type (format 0.0.4: every Prometheus 2.x/3.x parses it)."""
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


async def metrics_handler(request: Any) -> Any:
    """aiohttp handler for GET /metrics."""
    from aiohttp import web

    body, content_type = metrics_response()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_metrics_route(app: Any, path: str = "/metrics") -> None:
    """Serve /metrics on an aiohttp ``web.Application`` (webhook receiver, API, worker)."""
    app.router.add_get(path, metrics_handler)




def lag_by_partition(highwater: Mapping[Any, int | None], committed: Mapping[Any, int | None]) -> dict[Any, int]:
    """Lag per TopicPartition: highwater minus committed offset (0 when nothing is known yet)."""
    lags = {}
    for tp, high in highwater.items():
        if high is None:
            continue
        done = committed.get(tp)
        lags[tp] = max(0, high - (done if done is not None else 0))
    return lags
