"""Alerts as actions on ``cx.actions``: routed by the same rules, delivered like any other, closed when resolved.

* Routing: an alert shows the rules what a signal would: its brand, its
  channel or touchpoint, the emotion that rose, and bad news (sentiment
  negative), so `touchpoint_any: [delivery]` with `sentiment: negative` sends
  an NPS drop at delivery to the team that gets delivery complaints. No rule
  and no default: ``alert_team`` (priority high, SLA ``alert_sla_h``).
* Identity: action_id = uuid5("alert", alert id, rule) and subject = the
  alert id, so each alert is its own case and sending an action again (after
  a crash between the broker's ack and the ledger's note) changes nothing.
* Announcing (:func:`announce`): alerts whose opening or resolution has not
  reached cx.actions yet (the ledger's ``announced``) are sent, oldest first,
  and noted only after the broker acknowledged them. A resolved alert closes
  its open cases (by ``touchpoint-alerts``, with a note); a resolution whose
  case is not recorded yet waits for it (up to CASE_GRACE).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Awaitable, Callable, Sequence

from touchpoint.core.settings import Settings
from touchpoint.models.touchpoints import Taxonomy
from touchpoint.pipeline.alerts import ledger
from touchpoint.pipeline.alerts.ledger import Alert
from touchpoint.pipeline.cases import TransitionRefused, transition
from touchpoint.pipeline.rules import NO_TOUCHPOINT, Route, RuleSet, SignalFacts
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.schemas.action import OPEN_STATUSES, make_action_id
from touchpoint.schemas.codec import AvroCodec

ACTOR = "touchpoint-alerts"
FALLBACK_RULE = "alerts"
CASE_GRACE = timedelta(days=1)  # how long a resolution waits for its case to be recorded
NOT_EMOTIONS = ("volume_spike", "volume_drop", "sentiment", "nps", "csat")
Send = Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[None]]


@lru_cache(maxsize=4)
def _taxonomy(path: str | None) -> Taxonomy:
    return Taxonomy.load(path)


def alert_facts(alert: Alert, taxonomy_path: str | None = None) -> SignalFacts:
    """What the routing rules see of an alert: its series, and bad news."""
    touchpoint = alert.value if alert.dimension == "touchpoint" else None
    return SignalFacts(
        signal_id=alert.alert_id, brand=alert.brand, channel=alert.value if alert.dimension == "channel" else "",
        source="alerts", kind="", customer_id=None, author=None, touchpoints=(touchpoint,) if touchpoint else (),
        stage=_taxonomy(taxonomy_path).stage_of(touchpoint) if touchpoint else "unknown", language="und",
        score_metric=None, score_value=None, sentiment_label="negative", sentiment_score=None,
        emotions=(alert.metric,) if alert.metric not in NOT_EMOTIONS else (), text=alert.summary,
        occurred_at=alert.window_end, routed_at=alert.opened_at,
    )  # fmt: skip


def routes(alert: Alert, rules: RuleSet, settings: Settings) -> list[Route]:
    """The rules' routes for the alert (its age never counts: it is news now), else the alert team."""
    facts = alert_facts(alert, settings.taxonomy_path)
    found = rules.route(facts, has_open_case=False, now=alert.opened_at)
    touchpoint = facts.primary_touchpoint
    return found or [Route(FALLBACK_RULE, settings.alert_team, "high", timedelta(hours=settings.alert_sla_h), (), touchpoint)]


def _attributes(alert: Alert) -> dict[str, str]:
    why = alert.explanation
    attributes = {
        "metric": alert.metric, "dimension": alert.dimension, "value": alert.value, "direction": alert.direction,
        "window_start": alert.window_start.isoformat(), "window_end": alert.window_end.isoformat(),
        "current": f"{alert.current:.1f} [{alert.current_low:.1f}, {alert.current_high:.1f}]", "n": str(alert.n),
        "expected": f"{alert.expected:.1f} [{alert.expected_low:.1f}, {alert.expected_high:.1f}]",
        "baseline_n": str(alert.baseline_n), "z": f"{alert.score:+.2f}", "p_value": f"{alert.p_value:.2e}",
        "terms": ", ".join(t["term"] for t in why.get("terms", [])[:8]),
    }  # fmt: skip
    for i, quote in enumerate(why.get("verbatims", [])[:3], 1):
        attributes[f"verbatim_{i}"] = quote
    return attributes


def message(alert: Alert) -> str:
    """What a person reads in the announcement: the numbers, the words said more, the first verbatim."""
    why = alert.explanation
    lines = [alert.summary]
    if why.get("terms"):
        lines.append("Said more than usual: " + ", ".join(t["term"] for t in why["terms"][:6]))
    lines += [f"\u201c{quote}\u201d" for quote in why.get("verbatims", [])[:1]]
    return "\n".join(lines)


def alert_action(alert: Alert, route: Route, rules_version: str) -> dict[str, Any]:
    """The Avro action for one alert and one route (schemas/avro/action.v1.avsc)."""
    return {
        "action_id": make_action_id("alert", alert.alert_id, route.rule), "origin": "alert", "origin_id": alert.alert_id,
        "rule": route.rule, "rules_version": rules_version, "subject": alert.alert_id, "customer_id": None,
        "brand": alert.brand, "team": route.team, "priority": route.priority,
        "sla_seconds": int(route.sla.total_seconds()), "touchpoint": route.touchpoint or NO_TOUCHPOINT,
        "journey_stage": None, "destinations": list(route.destinations), "created_at": alert.opened_at,
        "occurred_at": alert.window_end, "channel": alert.value if alert.dimension == "channel" else None,
        "source": None, "summary": message(alert), "score": None, "sentiment_label": "negative",
        "sentiment_score": None, "emotions": [alert.metric] if alert.metric not in NOT_EMOTIONS else [],
        "language": None, "url": None, "attributes": _attributes(alert),
    }  # fmt: skip


def close_cases(store: Store, alert: Alert) -> tuple[int, int]:
    """Close the alert's open cases (its subject is its id); returns (closed now, cases it has at all)."""
    rows = store.query(
        "SELECT case_id, status FROM {db}.cases FINAL WHERE subject = {subject:String}", {"subject": alert.alert_id}
    )
    note = (
        f"Resolved by the detector at {alert.resolved_at or alert.updated_at:%Y-%m-%d %H:%M} UTC: "
        f"{alert.metric} at {alert.dimension} {alert.value} is back within its expected range."
    )
    closed = 0
    for row in rows:
        if row["status"] not in OPEN_STATUSES:
            continue
        try:
            _, changed = transition(store, row["case_id"], "close", ACTOR, note=note, now=alert.resolved_at)
        except TransitionRefused:
            continue  # closed meanwhile by a person: nothing to do
        closed += changed
    return closed, len(rows)


async def announce(store: AsyncStore, settings: Settings, rules: RuleSet | None, send: Send) -> dict[str, int]:
    """Send what the ledger has not announced yet; with no rules (routing off) openings wait, resolutions are noted."""
    pending = await store.call(ledger.unannounced)
    counts = {"actions": 0, "closed": 0}
    opened = [a for a in pending if a.state == "open"]
    if opened and rules is not None:
        codec = AvroCodec.for_subject("action")
        messages = [
            (alert.alert_id.encode(), codec.encode(alert_action(alert, route, rules.version)))
            for alert in opened
            for route in routes(alert, rules, settings)
        ]
        await send(messages)  # returns once the broker acknowledged every message
        await store.call(ledger.mark_announced, opened, "opened")
        counts["actions"] = len(messages)
    done = []
    for alert in (a for a in pending if a.state == "resolved"):
        if alert.announced == "opened":
            closed, cases = await store.call(close_cases, alert)
            counts["closed"] += closed
            if not cases and utc_now() - (alert.resolved_at or alert.updated_at) < CASE_GRACE:
                continue  # its case is not recorded yet (the case agent lags): close it next time
        done.append(alert)
    if done:
        await store.call(ledger.mark_announced, done, "resolved")
    return counts


def utc_now() -> datetime:
    return datetime.now(timezone.utc)

