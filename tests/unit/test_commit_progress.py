"""Commit stall: seconds a partition with lag has not moved its committed offset."""

from aiokafka import TopicPartition

from touchpoint.pipeline.lag import CommitProgress


def test_a_partition_that_commits_or_has_no_lag_is_never_stalled() -> None:
    progress = CommitProgress(stall_after_s=60)
    assert progress.observe("p0", committed=10, lag=5, now=0) == 0
    assert progress.observe("p0", committed=20, lag=5, now=100) == 0  # moved
    assert progress.observe("p0", committed=20, lag=0, now=500) == 0  # caught up: nothing to commit
    assert progress.stalled() == {}


def test_a_partition_with_lag_and_no_commit_stalls_and_recovers() -> None:
    progress = CommitProgress(stall_after_s=60)
    progress.observe(TopicPartition("signals.raw", 1), committed=7, lag=3, now=0)
    assert progress.observe(TopicPartition("signals.raw", 1), committed=7, lag=3, now=90) == 90
    assert progress.stalled() == {"signals.raw[1]": 90}
    progress.observe(TopicPartition("signals.raw", 1), committed=9, lag=1, now=95)
    assert progress.stalled() == {}

