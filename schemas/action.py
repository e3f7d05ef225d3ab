"""The action contract: what routing (or an alert) asks a team to do, on ``cx.actions``.

An action comes from a signal (a routing rule matched it) or from an alert (a
detector saw a drop); ``origin`` and ``origin_id`` say which. Its identity is
deterministic, so a redelivered signal produces the same action again and the
case store recognises it:

* ``action_id`` = uuid5(origin, origin id, rule): one per signal and rule;
* a case belongs to one ``subject`` (the customer id, else the author, else the
  origin id: the Kafka key), one team and one touchpoint (``case_key``); while
  it is open, new actions with the same key attach to it instead of opening
  another; its ``case_id`` = uuid5(case key, the action that opened it).
"""

from __future__ import annotations

import uuid

ORIGINS = ("signal", "alert")
PRIORITIES = ("low", "normal", "high", "urgent")
CASE_STATUSES = ("open", "acknowledged", "closed")
OPEN_STATUSES = ("open", "acknowledged")  # a case that still needs someone

_NAMESPACE = uuid.UUID("0b7c2a57-3f3e-5d1c-8f1e-3c1d2a9e6b40")


def make_action_id(origin: str, origin_id: str, rule: str) -> str:
    """One id per (origin, origin id, rule): the same signal routed by the same rule is the same action."""
    if origin not in ORIGINS:
        raise ValueError(f"action origin {origin!r} is not one of {', '.join(ORIGINS)}")
    return str(uuid.uuid5(_NAMESPACE, f"{origin}\x1f{origin_id}\x1f{rule}"))


def case_key(subject: str, team: str, touchpoint: str) -> str:
    """Which open case an action belongs to: one per subject, team and touchpoint."""
    return f"{subject}\x1f{team}\x1f{touchpoint}"


def make_case_id(key: str, opening_action_id: str) -> str:
    """A case's id: its key and the action that opened it (a later case for the same key gets another id)."""
    return str(uuid.uuid5(_NAMESPACE, f"case\x1f{key}\x1f{opening_action_id}"))
