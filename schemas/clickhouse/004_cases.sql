-- Closing the loop (issue 15): cases, the actions that opened or joined them,
-- and what was delivered where. Every write is an insert; state survives
-- restarts and rebalances because it lives here, not in a worker.

-- A case's current state: one row per case_id. Each transition inserts the
-- next revision (1 = opened); ReplacingMergeTree(revision) with FINAL keeps
-- the highest, so a redelivered "open" row (revision 1) can never replace an
-- acknowledgement or a close: a closed case is never reopened by redelivery.
CREATE TABLE IF NOT EXISTS {db}.cases
(
    case_id          String,
    revision         UInt32,
    case_key         String,
    subject          String,
    customer_id      Nullable(String),
    brand            LowCardinality(String),
    team             LowCardinality(String),
    touchpoint       LowCardinality(String),
    journey_stage    LowCardinality(Nullable(String)),
    priority         LowCardinality(String),
    rule             LowCardinality(String),
    origin           LowCardinality(String),
    opened_by        String,
    status           LowCardinality(String),
    owner            Nullable(String),
    resolution_note  Nullable(String),
    sla_seconds      UInt32,
    opened_at        DateTime64(3, 'UTC'),
    due_at           DateTime64(3, 'UTC'),
    acknowledged_at  Nullable(DateTime64(3, 'UTC')),
    closed_at        Nullable(DateTime64(3, 'UTC')),
    updated_at       DateTime64(3, 'UTC'),
    updated_by       String,
    INDEX case_key_idx case_key TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX subject_idx subject TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY case_id;

-- Every state a case went through (one row per case and revision).
CREATE TABLE IF NOT EXISTS {db}.case_history AS {db}.cases
ENGINE = ReplacingMergeTree
ORDER BY (case_id, revision);

-- One row per action_id: the case it opened or was attached to. The case agent
-- looks here first, so a redelivered action changes nothing.
CREATE TABLE IF NOT EXISTS {db}.actions
(
    action_id        String,
    case_id          String,
    disposition      LowCardinality(String),
    origin           LowCardinality(String),
    origin_id        String,
    rule             LowCardinality(String),
    rules_version    LowCardinality(String),
    subject          String,
    customer_id      Nullable(String),
    brand            LowCardinality(String),
    team             LowCardinality(String),
    priority         LowCardinality(String),
    touchpoint       LowCardinality(String),
    sla_seconds      UInt32,
    created_at       DateTime64(3, 'UTC'),
    occurred_at      Nullable(DateTime64(3, 'UTC')),
    channel          LowCardinality(Nullable(String)),
    source           LowCardinality(Nullable(String)),
    summary          Nullable(String),
    score_metric     LowCardinality(Nullable(String)),
    score_value      Nullable(Float64),
    sentiment_label  LowCardinality(Nullable(String)),
    sentiment_score  Nullable(Float32),
    emotions         Array(LowCardinality(String)),
    destinations     Array(LowCardinality(String)),
    recorded_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX case_idx case_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY action_id;

-- Delivery status per action and destination: delivered, or failed (dead-lettered with the reason).
CREATE TABLE IF NOT EXISTS {db}.deliveries
(
    action_id        String,
    destination      LowCardinality(String),
    case_id          String,
    kind             LowCardinality(String),
    status           LowCardinality(String),
    attempts         UInt16,
    http_status      Nullable(UInt16),
    reason           Nullable(String),
    idempotency_key  String,
    updated_at       DateTime64(3, 'UTC'),
    INDEX case_idx case_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (action_id, destination);
