-- Enriched signals, one row per signal_id (003 re-keys this table by
-- signal_id alone). Redelivery inserts the same row again; ReplacingMergeTree keeps the newest (by enriched_at) and every metric
-- query reads with FINAL, so a signal stored twice never counts twice.
CREATE TABLE IF NOT EXISTS {db}.signals
(
    signal_id        String,
    source_id        String,
    kind             LowCardinality(String),
    channel          LowCardinality(String),
    source           LowCardinality(String),
    brand            LowCardinality(String),
    customer_id      Nullable(String),
    author           Nullable(String),
    occurred_at      DateTime64(3, 'UTC'),
    ingested_at      DateTime64(3, 'UTC'),
    enriched_at      DateTime64(3, 'UTC'),
    stored_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    text_redacted    Nullable(String),
    pii_found        Array(LowCardinality(String)),
    language         LowCardinality(String),
    score_metric     LowCardinality(Nullable(String)),
    score_value      Nullable(Float64),
    score_scale_min  Nullable(Int16),
    score_scale_max  Nullable(Int16),
    touchpoint_hint  LowCardinality(Nullable(String)),
    touchpoints      Array(LowCardinality(String)),
    journey_stage    LowCardinality(String),
    sentiment_label  LowCardinality(Nullable(String)),
    sentiment_score  Nullable(Float32),
    emotions         Array(LowCardinality(String)),
    url              Nullable(String),
    attributes       Map(String, String),
    model_version    LowCardinality(String)
)
ENGINE = ReplacingMergeTree(enriched_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (brand, toDate(occurred_at), signal_id);
