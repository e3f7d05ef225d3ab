"""Cases in ClickHouse: opened or joined by actions, moved by people (API, CLI).

Where the state lives (schemas/clickhouse/004_cases.sql), and why a restart or
a rebalance loses nothing: every decision reads ClickHouse, never memory.

1. :func:`record_actions` (the case agent, one batch at a time, on the store's
   thread): an action already in ``actions`` is a redelivery and changes
   nothing. Otherwise an open or acknowledged case with the same key (subject,
   team, touchpoint) gets it attached; else a case opens, with a deterministic
   id. Cases are written before the actions that point at them, so a crash in
   between is repaired by the redelivery: it finds the case it opened.
2. :func:`transition` (people): acknowledge, close (with a resolution note),
   reopen. Each inserts the next revision; ``cases FINAL`` keeps the highest.
   A redelivered action only ever inserts revision 1, so it can neither
   reopen a closed case nor undo an acknowledgement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence, TypeVar

from touchpoint.core.retry import retry_until_done
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.pipeline.store_errors import StoreAction, StoreError
from touchpoint.schemas.action import OPEN_STATUSES, case_key, make_case_id

log = logging.getLogger(__name__)
T = TypeVar("T")

CASE_COLUMNS = (
    "case_id", "revision", "case_key", "subject", "customer_id", "brand", "team", "touchpoint", "journey_stage",
    "priority", "rule", "origin", "opened_by", "status", "owner", "resolution_note", "sla_seconds", "opened_at",
    "due_at", "acknowledged_at", "closed_at", "updated_at", "updated_by",
)  # fmt: skip
ACTION_COLUMNS = (
    "action_id", "case_id", "disposition", "origin", "origin_id", "rule", "rules_version", "subject", "customer_id",
    "brand", "team", "priority", "touchpoint", "sla_seconds", "created_at", "occurred_at", "channel", "source",
    "summary", "score_metric", "score_value", "sentiment_label", "sentiment_score", "emotions", "destinations",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "action_id", "destination", "case_id", "kind", "status", "attempts", "http_status", "reason", "idempotency_key",
    "updated_at",
)  # fmt: skip
ROUTER = "router"  # updated_by for what the case agent writes


class CaseNotFound(LookupError):
    """No case has this id."""


class TransitionRefused(ValueError):
    """The case is not in a state this transition starts from (or a required field is missing)."""


@dataclass(frozen=True)
class Transition:
    """A move people make: from which states, to which one."""

    name: str
    starts_from: tuple[str, ...]
    to: str


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition("acknowledge", ("open",), "acknowledged"),
        Transition("close", ("open", "acknowledged"), "closed"),
        Transition("reopen", ("closed",), "open"),
    )
}


@dataclass(frozen=True)
class Recorded:
    """What the case store did with one action."""

    action: Mapping[str, Any]
    case_id: str
    disposition: str  # "opened" (this action opened the case) or "attached"
    new: bool  # False: the action was recorded before (a redelivery)

    @property
    def announces(self) -> bool:
        """Only the opening of a case is announced to destinations: no storm from one angry customer."""
        return self.disposition == "opened"


def _utc(stamp: datetime | None) -> datetime | None:
    if stamp is None:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def key_of(action: Mapping[str, Any]) -> str:
    return case_key(action["subject"], action["team"], action["touchpoint"])


def opened_case_row(action: Mapping[str, Any], case_id: str, now: datetime) -> dict[str, Any]:
    """Revision 1 of a case an action opens; the SLA clock starts at the action's created_at."""
    opened_at = _utc(action["created_at"])
    return {
        "case_id": case_id, "revision": 1, "case_key": key_of(action), "subject": action["subject"],
        "customer_id": action.get("customer_id"), "brand": action["brand"], "team": action["team"],
        "touchpoint": action["touchpoint"], "journey_stage": action.get("journey_stage"), "priority": action["priority"],
        "rule": action["rule"], "origin": action["origin"], "opened_by": action["action_id"], "status": "open",
        "owner": None, "resolution_note": None, "sla_seconds": int(action["sla_seconds"]), "opened_at": opened_at,
        "due_at": opened_at + timedelta(seconds=int(action["sla_seconds"])), "acknowledged_at": None,
        "closed_at": None, "updated_at": now, "updated_by": ROUTER,
    }  # fmt: skip


def action_row(action: Mapping[str, Any], case_id: str, disposition: str) -> dict[str, Any]:
    score = action.get("score") or {}
    return {
        **{name: action.get(name) for name in ACTION_COLUMNS},
        "case_id": case_id, "disposition": disposition, "sla_seconds": int(action["sla_seconds"]),
        "created_at": _utc(action["created_at"]), "occurred_at": _utc(action.get("occurred_at")),
        "score_metric": score.get("metric"), "score_value": score.get("value"),
        "emotions": list(action.get("emotions") or []), "destinations": list(action.get("destinations") or []),
    }  # fmt: skip


def insert(store: Store, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    store.insert(table, [[row[c] for c in columns] for row in rows], columns)


def record_actions(store: Store, actions: Sequence[Mapping[str, Any]], now: datetime | None = None) -> list[Recorded]:
    """Open or join cases for a batch of actions, in order (module docstring, step 1)."""
    now = now or datetime.now(timezone.utc)
    ids = sorted({a["action_id"] for a in actions})
    known = {
        row["action_id"]: row
        for row in store.query(
            "SELECT action_id, case_id, disposition FROM {db}.actions FINAL WHERE action_id IN {ids:Array(String)}",
            {"ids": ids},
        )
    }
    keys = sorted({key_of(a) for a in actions if a["action_id"] not in known})
    open_by_key: dict[str, dict[str, Any]] = {}
    for row in store.query(
        "SELECT case_id, case_key, opened_by, opened_at FROM {db}.cases FINAL "
        "WHERE case_key IN {keys:Array(String)} AND status IN {open:Array(String)} ORDER BY opened_at, case_id",
        {"keys": keys, "open": list(OPEN_STATUSES)},
    ):
        open_by_key.setdefault(row["case_key"], row)  # the oldest open case of a key, should there be two
    results: list[Recorded] = []
    opened: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for action in actions:
        previous = known.get(action["action_id"])
        if previous is not None:
            results.append(Recorded(action, previous["case_id"], previous["disposition"], new=False))
            continue
        key = key_of(action)
        case = open_by_key.get(key)
        if case is None:
            case = opened_case_row(action, make_case_id(key, action["action_id"]), now)
            opened.append(case)
            open_by_key[key] = case
        disposition = "opened" if case["opened_by"] == action["action_id"] else "attached"
        row = action_row(action, case["case_id"], disposition)
        rows.append(row)
        known[action["action_id"]] = row  # the same action twice in one batch is recorded once
        results.append(Recorded(action, case["case_id"], disposition, new=True))
    insert(store, "cases", CASE_COLUMNS, opened)
    insert(store, "case_history", CASE_COLUMNS, opened)
    insert(store, "actions", ACTION_COLUMNS, rows)
    return results


def delivered_pairs(store: Store, action_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(action_id, destination) pairs already delivered: a redelivered action does not notify twice."""
    rows = store.query(
        "SELECT action_id, destination FROM {db}.deliveries FINAL "
        "WHERE action_id IN {ids:Array(String)} AND status = 'delivered'",
        {"ids": list(action_ids)},
    )
    return {(row["action_id"], row["destination"]) for row in rows}


def record_deliveries(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    insert(store, "deliveries", DELIVERY_COLUMNS, rows)


# ---------------------------------------------------------------- people move cases


def current_case(store: Store, case_id: str) -> dict[str, Any]:
    rows = store.query(f"SELECT {', '.join(CASE_COLUMNS)} FROM {{db}}.cases FINAL WHERE case_id = {{id:String}}", {"id": case_id})
    if not rows:
        raise CaseNotFound(f"no case {case_id!r}; `touchpoint cases list` shows the ids")
    return rows[0]


def transition(
    store: Store, case_id: str, name: str, actor: str, *, owner: str | None = None, note: str | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Move a case (acknowledge, close, reopen); returns (the case now, whether it changed).

    Asking for the state the case is already in changes nothing (a retried
    request is harmless); any other move from a state it does not start from
    raises :class:`TransitionRefused` naming the states it needs.
    """
    move = TRANSITIONS.get(name)
    if move is None:
        raise TransitionRefused(f"unknown transition {name!r}; one of {', '.join(TRANSITIONS)}")
    if not actor.strip():
        raise TransitionRefused("say who does it (the actor or owner)")
    case = current_case(store, case_id)
    if case["status"] == move.to:
        return case, False
    if case["status"] not in move.starts_from:
        raise TransitionRefused(
            f"case {case_id} is {case['status']}; {name} needs a case that is {' or '.join(move.starts_from)}"
        )
    now = now or datetime.now(timezone.utc)
    updated = {**case, "revision": case["revision"] + 1, "status": move.to, "updated_at": now, "updated_by": actor}
    if name == "acknowledge":
        updated["owner"] = owner or actor
        updated["acknowledged_at"] = case["acknowledged_at"] or now  # time to acknowledge counts the first one
    elif name == "close":
        if not (note or "").strip():
            raise TransitionRefused("closing a case needs a resolution note: what was done for the customer")
        updated.update(owner=owner or case["owner"] or actor, resolution_note=note.strip(), closed_at=now)
    elif name == "reopen":
        updated.update(closed_at=None, resolution_note=None)
    insert(store, "cases", CASE_COLUMNS, [updated])
    insert(store, "case_history", CASE_COLUMNS, [updated])
    return updated, True


# ---------------------------------------------------------------- reading cases


CASE_FILTERS = ("status", "team", "priority", "touchpoint", "brand", "customer_id")
# A case breached its SLA when it was closed after its due time, or is still open past it.
BREACHED = "if(status = 'closed', closed_at > due_at, now64(3) > due_at)"
STILL_OPEN = "status != 'closed'"


def list_cases(store: Store, filters: Mapping[str, str | None], breached: bool | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Current cases, newest first, with how many signals each carries and whether it is past due."""
    clauses, params = ["1"], {"limit": limit}
    for name in CASE_FILTERS:
        if filters.get(name):
            clauses.append(f"c.{name} = {{{name}:String}}")
            params[name] = filters[name]
    if breached is not None:
        clauses.append(f"{'' if breached else 'NOT '}c.breached")
    sql = f"""
        SELECT c.case_id AS case_id, c.status AS status, c.team AS team, c.priority AS priority,
               c.touchpoint AS touchpoint, c.brand AS brand, c.subject AS subject, c.customer_id AS customer_id,
               c.rule AS rule, c.owner AS owner, c.opened_at AS opened_at, c.due_at AS due_at,
               c.acknowledged_at AS acknowledged_at, c.closed_at AS closed_at, c.resolution_note AS resolution_note,
               c.revision AS revision, c.breached AS breached, ifNull(a.signals, 0) AS signals
        FROM (SELECT *, {BREACHED} AS breached FROM {{db}}.cases FINAL) AS c
        LEFT JOIN (SELECT case_id, count() AS signals FROM {{db}}.actions FINAL GROUP BY case_id) AS a ON a.case_id = c.case_id
        WHERE {' AND '.join(clauses)}
        ORDER BY c.opened_at DESC, c.case_id LIMIT {{limit:UInt32}}
    """
    return store.query(sql, params)




def case_detail(store: Store, case_id: str) -> dict[str, Any]:
    """One case with its history, the actions (signals) attached to it, and its deliveries."""
    case = current_case(store, case_id)
    params = {"id": case_id}
    case["history"] = store.query(
        "SELECT revision, status, owner, resolution_note, updated_at, updated_by FROM {db}.case_history FINAL "
        "WHERE case_id = {id:String} ORDER BY revision",
        params,
    )
    case["actions"] = store.query(
        "SELECT action_id, disposition, origin, origin_id, rule, created_at, occurred_at, channel, source, summary, "
        "score_metric, score_value, sentiment_label, sentiment_score, emotions FROM {db}.actions FINAL "
        "WHERE case_id = {id:String} ORDER BY created_at, action_id",
        params,
    )
    case["deliveries"] = store.query(
        "SELECT destination, kind, status, attempts, http_status, reason, updated_at FROM {db}.deliveries FINAL "
        "WHERE case_id = {id:String} ORDER BY destination",
        params,
    )
    return case


# ---------------------------------------------------------------- store calls from async code


async def with_store_retry(
    store: AsyncStore, fn: Callable[..., T], *args: Any, initial_s: float = 0.5, max_s: float = 30.0, what: str = "case store"
) -> T:
    """``fn(store, *args)`` on one of the store's threads, waiting out a store that is down, full or
    misconfigured (pipeline/store_errors.py: everything but bad rows) with backoff while the batch's
    offsets stay uncommitted; bad rows and any other error are raised to the caller."""

    def on_failure(exc: Exception, attempt: int, delay: float) -> None:
        if not isinstance(exc, StoreError) or exc.action is StoreAction.BAD_ROWS:
            raise exc
        log.warning("ClickHouse failed for the %s (%s; %s); retrying in %.1fs", what, exc, exc.hint, delay)

    return await retry_until_done(lambda: store.call(fn, *args), on_failure, initial_s=initial_s, max_s=max_s)
