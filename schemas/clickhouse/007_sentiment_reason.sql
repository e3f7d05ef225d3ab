-- Issue 13: sentiment the model cannot give (a language it cannot read) is stored as
-- sentiment_label = 'unknown' with the reason here; metrics leave it out of net
-- sentiment and count it as unscored. Rows written before this column read NULL.
ALTER TABLE {db}.signals ADD COLUMN IF NOT EXISTS sentiment_reason Nullable(String) AFTER sentiment_score;
