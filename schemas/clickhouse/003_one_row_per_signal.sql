-- One row per signal_id, whatever a correction changes.
--
-- The first table sorted by (brand, toDate(occurred_at), signal_id) and was
-- partitioned by month: a re-import that corrected a signal's brand or time
-- wrote a row under another sorting key (and partition), so FINAL kept both.
-- Now the sorting key is the identity alone: ReplacingMergeTree(enriched_at)
-- keeps the newest version of each signal_id, and there is no partition key a
-- correction could move a row across. Chosen by measurement (bench/queries.py
-- at 1,000,000 signals; README "Query speed").
--
-- A resumable change (each step runs only while its `when` query answers 1),
-- ordered so a worker inserting meanwhile loses nothing: the new table takes
-- the name first, so inserts go to it at once; then the old rows are copied
-- in; a signal written meanwhile has a newer enriched_at and wins.

-- when: SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'signals' AND sorting_key != 'signal_id' AND NOT exists(SELECT 1 FROM system.tables WHERE database = '{db}' AND name = 'signals_by_id')
CREATE TABLE {db}.signals_by_id AS {db}.signals ENGINE = ReplacingMergeTree(enriched_at) PARTITION BY tuple() ORDER BY signal_id;

-- when: SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'signals' AND sorting_key != 'signal_id'
EXCHANGE TABLES {db}.signals AND {db}.signals_by_id;

-- when: SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'signals_by_id'
INSERT INTO {db}.signals SELECT * FROM {db}.signals_by_id;

DROP TABLE IF EXISTS {db}.signals_by_id;
ALTER TABLE {db}.signals ADD INDEX IF NOT EXISTS customer_idx customer_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {db}.signals MATERIALIZE INDEX customer_idx;
