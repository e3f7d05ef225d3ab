-- Alerts (issue 16): one row per alert, rewritten while it is open; the newest
-- (by updated_at) wins. alert_id is derived from the series, metric and the
-- window end at which it opened, so a watcher that restarts, or a second one,
-- finds the same open alert instead of raising it again. announced says what
-- reached cx.actions so far ('' nothing, 'opened' the action, 'resolved' its
-- case closed): what is not announced yet is retried by the next cycle.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id          String,
    brand             LowCardinality(String),
    dimension         LowCardinality(String),
    value             String,
    metric            LowCardinality(String),
    direction         LowCardinality(String),
    state             LowCardinality(String),
    opened_at         DateTime64(3, 'UTC'),
    updated_at        DateTime64(3, 'UTC'),
    resolved_at       Nullable(DateTime64(3, 'UTC')),
    window_start      DateTime64(3, 'UTC'),
    window_end        DateTime64(3, 'UTC'),
    current           Float64,
    current_low       Float64,
    current_high      Float64,
    expected          Float64,
    expected_low      Float64,
    expected_high     Float64,
    n                 UInt64,
    baseline_n        UInt64,
    baseline_windows  UInt8,
    score             Float64,
    p_value           Float64,
    q                 Float64,
    summary           String,
    explanation       String,
    announced         LowCardinality(String) DEFAULT ''
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY alert_id;
