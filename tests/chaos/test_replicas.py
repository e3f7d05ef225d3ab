"""Scale-out by replicas (issue 18, item 6): enrich replicas share the partitions of signals.raw.

Real processes on the embedded broker: one `touchpoint worker --role sink` and
one `--role enrich`; a second enrich replica joins while signals flow (the
group rebalances mid-stream). Every produced signal must be stored exactly once
(or dead-lettered), none lost, none twice, and the second replica must have
enriched some of them (it got partitions).
"""

from __future__ import annotations

import re

from tests.chaos.harness import Stack, http_json, produced_ids, signal_lines, stored_volume, wait_until
from tests.chaos.test_crash_safety import START_S, TEXTS, assert_balanced, metrics_text, sample
from touchpoint.core.broker import free_port


def scraped(port: int) -> str:
    """This worker's /metrics, empty if it does not answer yet."""
    try:
        return metrics_text(port)
    except OSError:
        return ""


def metric(port: int, name: str) -> float:
    """One sample from this worker's /metrics, 0 if it does not answer yet."""
    return sample(scraped(port), name)


def enriched_by(port: int) -> float:
    """Signals this worker's enrich agent sent on."""
    return metric(port, "touchpoint_enrich_events_out_total")


def raw_partitions(port: int) -> set[str]:
    """The signals.raw partitions this worker owns now, from its lag gauges (refreshed every 5 s)."""
    return set(re.findall(r'touchpoint_consumer_lag_messages\{partition="(\d+)",topic="[^"]*\.raw"\}', scraped(port)))


async def test_two_enrich_replicas_and_a_sink_through_a_rebalance_lose_and_double_nothing(stack: Stack) -> None:
    first_part, second_part = signal_lines("rep", 360, TEXTS), signal_lines("rep2", 240, TEXTS)
    sink_port, first_port, second_port = free_port(), free_port(), free_port()
    stack.start_worker(sink_port, extra_env={"TOUCHPOINT_WORKER_ROLE": "sink"})
    stack.start_worker(first_port, extra_env={"TOUCHPOINT_WORKER_ROLE": "enrich"})
    stack.run_import(stack.write_file("one.jsonl", first_part), source="replicas")
    wait_until(lambda: stored_volume(sink_port, "replicas") >= 20, START_S, what="the first replica's signals stored")
    stack.start_worker(second_port, extra_env={"TOUCHPOINT_WORKER_ROLE": "enrich"})  # joins: a rebalance mid-stream
    wait_until(lambda: http_json(f"http://127.0.0.1:{second_port}/readyz")[0] == 200, START_S, what="second replica ready")
    # ready is not yet assigned: the signals below must reach it only once the group has rebalanced
    wait_until(lambda: raw_partitions(second_port) and not raw_partitions(second_port) & raw_partitions(first_port),
               START_S, what="the second replica owns partitions of signals.raw")  # fmt: skip
    stack.run_import(stack.write_file("two.jsonl", second_part), source="replicas")
    wait_until(lambda: enriched_by(second_port) > 0, START_S, what="the second replica enriches its partitions")
    wait_until(lambda: stored_volume(sink_port, "replicas") >= 600, START_S, what="all stored")
    assert enriched_by(first_port) > 0
    # a rebalance is not a lost log: no worker rewound (Tansu's ListOffsets once made every worker here think so)
    assert [metric(port, "touchpoint_consumer_log_resets_total") for port in (sink_port, first_port, second_port)] == [0] * 3
    stack.stop_workers()
    report = await assert_balanced(stack, {"replicas": produced_ids(first_part + second_part, "replicas")})
    assert len(report["stored"]) == 600
