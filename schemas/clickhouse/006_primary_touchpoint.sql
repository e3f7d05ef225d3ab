-- Attribution (issue 13): a score counts once, under the response's primary
-- touchpoint. The enrich stage decides it and stores it here (enriched_signal v2).
-- attributed_touchpoint is what every query and dashboard groups scores by: the
-- stored primary, or for rows stored before this column existed (and messages
-- from a v1 writer) the same rule applied to what they hold: the hint when the
-- tagger kept it, else the first tag; 'untagged' when there is no tag.
-- An ALIAS is computed when read and never stored, so old rows need no rewrite.
ALTER TABLE {db}.signals ADD COLUMN IF NOT EXISTS primary_touchpoint LowCardinality(Nullable(String));
ALTER TABLE {db}.signals ADD COLUMN IF NOT EXISTS attributed_touchpoint String ALIAS ifNull(primary_touchpoint, if(has(touchpoints, touchpoint_hint), assumeNotNull(touchpoint_hint), if(empty(touchpoints), 'untagged', touchpoints[1])));
