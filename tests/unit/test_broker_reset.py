"""A broker that lost its state is told from one whose ListOffsets answer trails its log for a moment."""

from __future__ import annotations

from touchpoint.pipeline.broker_reset import beyond_log_end, confirmed


def test_offsets_beyond_the_log_end_count_only_when_seen_twice_with_the_same_commit() -> None:
    suspects: dict = {}
    # first check: committed 64 > end 51 (Tansu's ListOffsets trailing under load, or a reset)
    assert confirmed(beyond_log_end({"p0": 51}, {"p0": 64}), {"p0": 64}, suspects) == []
    # the worker committed more since: it is consuming a live log, not a lost one
    assert confirmed(beyond_log_end({"p0": 70}, {"p0": 80}), {"p0": 80}, suspects) == []
    # caught up: nothing beyond, nothing suspected
    assert confirmed(beyond_log_end({"p0": 90}, {"p0": 90}), {"p0": 90}, suspects) == []
    assert suspects == {}


def test_a_lost_log_is_confirmed_at_the_second_check() -> None:
    suspects: dict = {}
    assert confirmed(beyond_log_end({"p0": 3, "p1": 40}, {"p0": 96, "p1": 40}), {"p0": 96, "p1": 40}, suspects) == []
    assert confirmed(beyond_log_end({"p0": 5, "p1": 41}, {"p0": 96, "p1": 41}), {"p0": 96, "p1": 41}, suspects) == ["p0"]


def test_a_partition_ends_where_the_later_of_list_offsets_and_the_last_fetch_says() -> None:
    from touchpoint.pipeline.lag import log_ends

    # Tansu: ten records in one batch at 0-9 list as end 1; the fetch says 10
    assert log_ends({"p0": 1, "p1": 7}, {"p0": 10, "p1": None}) == {"p0": 10, "p1": 7}
    assert log_ends({"p0": None}, {"p0": None}) == {"p0": None}
    # read so, the committed offset of a finished import is not "beyond the log end"; ListOffsets alone says it is
    assert beyond_log_end(log_ends({"p0": 1}, {"p0": 10}), {"p0": 10}) == []
    assert beyond_log_end({"p0": 1}, {"p0": 10}) == ["p0"]


def test_a_reset_wipes_only_what_workers_alone_write() -> None:
    """Connectors produce to the raw and dead-letter topics; an import right after a restart may write to a topic
    a worker has just recreated, and a wipe would delete those acknowledged records (pipeline/broker_reset.py)."""
    from touchpoint.core.settings import Settings
    from touchpoint.pipeline.broker_reset import wiped_on_reset

    settings = Settings.load().with_overrides(topic_raw="r", topic_enriched="e", topic_dead_letter="d")
    assert wiped_on_reset(settings) == ["e"]
