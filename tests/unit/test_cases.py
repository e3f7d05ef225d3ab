"""Cases in ClickHouse (chdb): one case per customer, team and touchpoint while open; redelivery
changes nothing; a closed case is never reopened by it; the loop metrics add up by hand.

Actions are made by the real route mapping (pipeline/routing.py action_record) from enriched
records in the stored shape (tests/cx_rows.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from tests.cx_rows import T0, signal
from touchpoint.pipeline.cases import (
    CASE_COLUMNS,
    CaseNotFound,
    TransitionRefused,
    case_detail,
    insert,
    list_cases,
    opened_case_row,
    record_actions,
    transition,
)
from touchpoint.pipeline.loop_metrics import loop_rows, open_now, refresh_gauges
from touchpoint.pipeline.queries import Filters
from touchpoint.pipeline.routing import action_record
from touchpoint.pipeline.rules import Route, SignalFacts
from touchpoint.pipeline.store import Store
from touchpoint.schemas.action import make_case_id


def action(i: int, *, customer: str | None = "cust-1", team: str = "app", touchpoint: str = "mobile_app",
           rule: str = "r", sla_h: float = 24, at: datetime = T0, priority: str = "high") -> dict:  # fmt: skip
    record = signal(i, customer_id=customer, touchpoints=[touchpoint], label="negative", enriched_at=at)
    route = Route(rule, team, priority, timedelta(hours=sla_h), ("hook",), touchpoint)
    return action_record(SignalFacts.from_record(record), route, "v1")


def current(store: Store) -> dict[str, dict]:
    return {row["case_id"]: row for row in store.query("SELECT case_id, status, revision FROM {db}.cases FINAL")}


def test_one_case_per_customer_team_and_touchpoint_while_open(store: Store) -> None:
    first = record_actions(store, [action(1), action(2), action(3, touchpoint="billing"), action(4, customer=None)])
    assert [(r.disposition, r.new) for r in first] == [("opened", True), ("attached", True), ("opened", True), ("opened", True)]
    assert first[0].case_id == first[1].case_id != first[2].case_id
    assert first[3].action["subject"] == first[3].action["origin_id"]  # no customer: the signal is the subject
    later = record_actions(store, [action(5)])  # a later batch, a new signal: attached to the open case
    assert later[0].disposition == "attached" and later[0].case_id == first[0].case_id
    assert len(current(store)) == 3
    [case] = [c for c in list_cases(store, {"touchpoint": "mobile_app"}) if c["case_id"] == first[0].case_id]
    assert case["signals"] == 3 and case["status"] == "open" and case["team"] == "app"


def test_redelivery_changes_nothing(store: Store) -> None:
    batch = [action(1), action(2), action(1)]  # the same action twice in one batch, too
    first = record_actions(store, batch)
    assert [r.new for r in first] == [True, True, False]
    again = record_actions(store, batch)
    assert [(r.case_id, r.disposition, r.new) for r in again] == [(r.case_id, r.disposition, False) for r in first]
    counts = store.query("SELECT (SELECT count() FROM {db}.actions FINAL) AS actions, (SELECT count() FROM {db}.cases FINAL) AS cases")
    assert counts == [{"actions": 2, "cases": 1}]


def test_a_crash_between_case_and_action_rows_is_repaired_by_the_redelivery(store: Store) -> None:
    opening = action(1)
    key = f"{opening['subject']}\x1f{opening['team']}\x1f{opening['touchpoint']}"
    case_id = make_case_id(key, opening["action_id"])
    insert(store, "cases", CASE_COLUMNS, [opened_case_row(opening, case_id, T0)])  # the case row made it, not the action row
    [recorded] = record_actions(store, [opening])
    assert (recorded.case_id, recorded.disposition, recorded.new) == (case_id, "opened", True)
    assert len(current(store)) == 1


def test_lifecycle_and_a_closed_case_is_never_reopened_by_redelivery(store: Store) -> None:
    [opened] = record_actions(store, [action(1)])
    case_id = opened.case_id
    assert transition(store, case_id, "reopen", "ana")[1] is False  # already open: nothing to do
    acked, changed = transition(store, case_id, "acknowledge", "ana", now=T0 + timedelta(hours=1))
    assert changed and acked["status"] == "acknowledged" and acked["owner"] == "ana" and acked["revision"] == 2
    assert transition(store, case_id, "acknowledge", "ana")[1] is False  # a retried request changes nothing
    with pytest.raises(TransitionRefused, match="resolution note"):
        transition(store, case_id, "close", "ana", note="  ")
    closed, _ = transition(store, case_id, "close", "ana", note="Called back, refunded", now=T0 + timedelta(hours=5))
    assert closed["status"] == "closed" and closed["resolution_note"] == "Called back, refunded"
    with pytest.raises(TransitionRefused, match="is closed; acknowledge needs a case that is open"):
        transition(store, case_id, "acknowledge", "bo")

    # The opening action is redelivered, and even its revision-1 row written again: still closed, one row.
    assert record_actions(store, [action(1)])[0].new is False
    insert(store, "cases", CASE_COLUMNS, [opened_case_row(action(1), case_id, T0)])
    assert current(store) == {case_id: {"case_id": case_id, "status": "closed", "revision": 3}}

    # New feedback after the close opens a new case; the closed one stays closed.
    [fresh] = record_actions(store, [action(7, at=T0 + timedelta(days=1))])
    assert fresh.disposition == "opened" and fresh.case_id != case_id
    assert current(store)[case_id]["status"] == "closed" and current(store)[fresh.case_id]["status"] == "open"

    reopened, _ = transition(store, case_id, "reopen", "lead")
    assert reopened["status"] == "open" and reopened["closed_at"] is None and reopened["acknowledged_at"] is not None
    detail = case_detail(store, case_id)
    assert [h["status"] for h in detail["history"]] == ["open", "acknowledged", "closed", "open"]
    assert [a["disposition"] for a in detail["actions"]] == ["opened"]
    with pytest.raises(CaseNotFound):
        transition(store, "no-such-case", "close", "ana", note="x")


def test_loop_metrics_add_up_by_hand(store: Store) -> None:
    # team app: 4 cases (24h SLA) opened at T0; ack after 1h and 3h; closed after 2h (in SLA) and 30h (late);
    # one still open (past due now), one acknowledged only. team billing: 1 open case with a 100-day SLA.
    recorded = record_actions(store, [action(i, customer=f"c{i}") for i in range(4)] +
                              [action(9, customer="c9", team="billing", touchpoint="billing", sla_h=2400, priority="normal",
                                      at=datetime.now(timezone.utc))])  # fmt: skip
    ids = [r.case_id for r in recorded]
    transition(store, ids[0], "acknowledge", "ana", now=T0 + timedelta(hours=1))
    transition(store, ids[0], "close", "ana", note="fixed", now=T0 + timedelta(hours=2))
    transition(store, ids[1], "acknowledge", "bo", now=T0 + timedelta(hours=3))
    transition(store, ids[1], "close", "bo", note="late", now=T0 + timedelta(hours=30))
    transition(store, ids[2], "acknowledge", "bo", now=T0 + timedelta(hours=3))

    by_team = {r["team"]: r for r in loop_rows(store, Filters(), ("team",), min_n=3)}
    app = by_team["app"]
    assert (app["n"], app["open"], app["closed"], app["closed_within_sla"], app["sla_breaches"]) == (4, 2, 2, 1, 3)
    assert app["close_rate"] == 25.0  # closed within SLA / routed
    assert app["median_ack_s"] == 3 * 3600.0  # median of 1h, 3h, 3h
    assert app["median_close_s"] == 16 * 3600.0  # median of 2h and 30h
    assert app["low_confidence"] is False and by_team["billing"]["low_confidence"] is True
    assert by_team["billing"]["median_ack_s"] is None and by_team["billing"]["close_rate"] == 0.0

    now_rows = {(r["team"], r["priority"]): r for r in open_now(store)}
    assert (now_rows[("app", "high")]["open_total"], now_rows[("app", "high")]["breached"]) == (2, 2)
    assert (now_rows[("billing", "normal")]["open_total"], now_rows[("billing", "normal")]["breached"]) == (1, 0)
    assert loop_rows(store, Filters(since=T0 + timedelta(days=1)), ("team",))[0]["team"] == "billing"  # window on opened_at

    refresh_gauges(store, window_days=100_000)
    value = lambda name, team, priority: REGISTRY.get_sample_value(name, {"team": team, "priority": priority})  # noqa: E731
    assert value("touchpoint_cases_open", "app", "high") == 2
    assert value("touchpoint_cases_sla_breached", "app", "high") == 2
    assert value("touchpoint_loop_close_rate_ratio", "app", "high") == 0.25
    assert value("touchpoint_cases_median_time_to_acknowledge_seconds", "app", "high") == 3 * 3600.0
    for case_id in ids[2:4]:
        transition(store, case_id, "close", "bo", note="done")
    refresh_gauges(store, window_days=100_000)
    assert value("touchpoint_cases_open", "app", "high") == 0  # kept at 0, not dropped: alerts resolve


def test_cases_command_lists_acknowledges_closes_and_reports(store: Store, settings, capsys, monkeypatch) -> None:
    from touchpoint.cli import main

    [first, _, other] = record_actions(store, [action(1), action(2), action(3, customer="cust-9", team="billing", touchpoint="billing")])
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_URL", settings.clickhouse_url)
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert main(["cases", "list", "--team", "app", "--format", "json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["case_id"] == first.case_id and listed["signals"] == 2 and listed["breached"] == 1  # T0 + 24h is past

    assert main(["cases", "ack", first.case_id, "--by", "ana"]) == 0
    assert "acknowledged; owner ana" in capsys.readouterr().out
    assert main(["cases", "close", first.case_id, "--by", "ana", "--note", "replaced the device"]) == 0
    assert main(["cases", "ack", first.case_id, "--by", "bo"]) == 2
    assert "is closed; acknowledge needs a case that is open" in " ".join(capsys.readouterr().err.split())
    assert main(["cases", "close", "missing-id", "--note", "x"]) == 2

    assert main(["cases", "stats", "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {(r["team"], r["n"], r["closed"]) for r in stats["by_team_touchpoint"]} == {("app", 1, 1), ("billing", 1, 0)}
    assert [(r["team"], r["open_total"]) for r in stats["open_now"]] == [("billing", 1)]
    assert other.case_id in str(store.query("SELECT case_id FROM {db}.cases FINAL"))  # the fixture's client still works
