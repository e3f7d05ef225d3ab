-- Analysts' side (issue 5). Measured with bench/queries.py at 1,000,000 signals:
-- every standard metric reads the base table with FINAL (so a signal stored
-- twice never counts twice) and answers in well under a second, so there is no
-- pre-aggregated table: an aggregate fed by a materialized view would see each
-- re-delivered row again and need exact-distinct states as big as the data.
-- Queries add SETTINGS do_not_merge_across_partitions_select_final = 1, which is
-- exact whenever every version of a signal shares a partition (003 keys the
-- table by signal_id alone).

-- A customer's journey looks up one customer_id among all rows.
ALTER TABLE {db}.signals ADD INDEX IF NOT EXISTS customer_idx customer_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {db}.signals MATERIALIZE INDEX customer_idx;

-- For analysts writing SQL: one row per signal, and one row per (signal, touchpoint).
CREATE VIEW IF NOT EXISTS {db}.signals_latest AS SELECT * FROM {db}.signals FINAL;
CREATE VIEW IF NOT EXISTS {db}.signal_touchpoints AS
SELECT signal_id, occurred_at, brand, kind, channel, source, customer_id, touchpoint, journey_stage,
       score_metric, score_value, sentiment_label, sentiment_score, emotions, text_redacted
FROM {db}.signals FINAL ARRAY JOIN touchpoints AS touchpoint;
