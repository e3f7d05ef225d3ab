"""Help-desk conversation exports -> one RawSignal per conversation.

Zendesk (``touchpoint import FILE --channel chat --source zendesk --format zendesk``)
accepts the shapes Zendesk's APIs and exports produce:

* one JSON document ``{"tickets": [...], "users": [...]}`` — the Incremental
  Ticket Export with users side-loaded (``include=users``), each ticket with
  its ``comments`` (as returned by ``/api/v2/tickets/{id}/comments``) embedded;
* or JSON Lines, one ticket per line (the account's JSON data export), a line
  ``{"users": [...]}`` anywhere adds users.

Per ticket: the customer is ``requester_id``; the signal's text is the
customer's own public turns only (comments whose ``author_id`` is the
requester), in order, plus the CSAT comment; the agent is ``assignee_id``
(id and, when users are side-loaded, name) in attributes. Zendesk CSAT is
binary: ``satisfaction_rating.score`` ``good`` -> CSAT 5, ``bad`` -> CSAT 1
(so CSAT's top-2-box share equals Zendesk's satisfaction %); ``offered`` and
``unoffered`` carry no score. The customer id is the pseudonym of the
requester's email (side-loaded user, or the email channel's ``from.address``),
else of the requester id in the ``zendesk`` namespace (touchpoint.core.identity). Agent turns never enter the text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from touchpoint.connectors.surveys import scored
from touchpoint.core.identity import Identity
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import InvalidSignal, RawSignal

FORMATS = ("zendesk",)
_CSAT = {"good": 5, "bad": 1}


def _load(path: Path) -> tuple[list[tuple[bytes, Any]], dict[Any, dict[str, Any]]]:
    """(raw bytes, ticket or parse error) per ticket, and users by id."""
    raw = path.read_bytes()
    users: dict[Any, dict[str, Any]] = {}
    tickets: list[tuple[bytes, Any]] = []
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict) and "tickets" in document:
        for user in document.get("users") or []:
            if isinstance(user, dict):
                users[user.get("id")] = user
        for ticket in document.get("tickets") or []:
            tickets.append((json.dumps(ticket).encode(), ticket))
        return tickets, users
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            tickets.append((line, InvalidSignal(f"not valid JSON: {exc}")))
            continue
        if isinstance(obj, dict) and set(obj) == {"users"}:
            users.update({u.get("id"): u for u in obj["users"] if isinstance(u, dict)})
        else:
            tickets.append((line, obj))
    return tickets, users


def read_zendesk(path: Path) -> Iterator[tuple[bytes, dict[str, Any] | InvalidSignal]]:
    """(original bytes, {"ticket", "users"} or the parse error) per ticket."""
    tickets, users = _load(path)
    for payload, ticket in tickets:
        if isinstance(ticket, InvalidSignal):
            yield payload, ticket
        elif not isinstance(ticket, dict):
            yield payload, InvalidSignal("a ticket must be a JSON object")
        else:
            yield payload, {"ticket": ticket, "users": users}


def count_conversations(path: Path, fmt: str) -> int:
    return len(_load(path)[0])


def _requester_email(ticket: dict[str, Any], requester: dict[str, Any]) -> str | None:
    if requester.get("email"):
        return str(requester["email"])
    source = (ticket.get("via") or {}).get("source") or {}
    sender = source.get("from") or {} if isinstance(source, dict) else {}
    return sender.get("address") if isinstance(sender, dict) else None


def zendesk_to_signal(obj: dict[str, Any], *, channel: str, source: str, brand: str, identity: Identity) -> RawSignal:
    """One Zendesk ticket (with comments) as one conversation signal."""
    ticket, users = obj["ticket"], obj["users"]
    if not ticket.get("id"):
        raise InvalidSignal("ticket id is missing: each ticket needs Zendesk's id (for deduplication)")
    requester_id = ticket.get("requester_id")
    if requester_id is None:
        raise InvalidSignal(f"ticket {ticket['id']} has no requester_id, so the customer's turns cannot be told apart")
    comments = ticket.get("comments") or []
    if not isinstance(comments, list):
        raise InvalidSignal("ticket.comments must be a list of comment objects")
    turns = [
        str(c.get("plain_body") or c.get("body") or "").strip()
        for c in comments
        if isinstance(c, dict) and c.get("author_id") == requester_id and c.get("public", True)
    ]
    if not comments and ticket.get("description"):
        turns = [str(ticket["description"]).strip()]  # without comments the description is the opening turn
    rating = ticket.get("satisfaction_rating") or {}
    score = None
    attributes: dict[str, str] = {"ticket_status": str(ticket.get("status") or "")}
    attributes["customer_turns"] = str(len([t for t in turns if t]))
    if isinstance(rating, dict) and rating.get("score") in _CSAT:
        score = scored("csat", _CSAT[rating["score"]])
        attributes["satisfaction"] = str(rating["score"])
        if rating.get("comment"):
            turns.append(str(rating["comment"]).strip())
    agent_id = ticket.get("assignee_id")
    if agent_id is not None:
        attributes["agent_id"] = str(agent_id)
        agent = users.get(agent_id) or {}
        if agent.get("name"):
            attributes["agent_name"] = str(agent["name"])
    attributes["via_channel"] = str((ticket.get("via") or {}).get("channel") or "")
    attributes["subject"] = str(ticket.get("subject") or "")
    requester = users.get(requester_id) or {}
    customer = identity.customer_id(
        email=_requester_email(ticket, requester), phone=requester.get("phone"),
        account=requester_id, account_namespace="zendesk",
    )  # fmt: skip
    text = "\n".join(t for t in turns if t) or None
    return RawSignal(
        source=source, source_id=str(ticket["id"]), channel=channel, brand=brand,
        occurred_at=parse_timestamp(ticket.get("created_at"), "created_at"), text=text, score=score,
        customer_id=customer, url=ticket.get("url") or None,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


def _guarded(build: Callable[..., RawSignal]) -> Callable[..., RawSignal]:
    """An export shape the builder did not foresee dead-letters that record instead of stopping the import."""

    def guarded(obj: dict[str, Any], **options: Any) -> RawSignal:
        try:
            return build(obj, **options)
        except InvalidSignal:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidSignal(f"unexpected ticket shape: {type(exc).__name__}: {exc}") from exc

    return guarded


READERS = {"zendesk": read_zendesk}
BUILDERS = {"zendesk": _guarded(zendesk_to_signal)}
