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
