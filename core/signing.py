"""Touchpoint's own webhook signature, one rule for what we send and what we accept.

``X-Touchpoint-Timestamp: UNIX_SECONDS`` and
``X-Touchpoint-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))``:
the timestamp is signed with the body, so a receiver that refuses old
timestamps also refuses replays. The survey webhook receiver verifies this
scheme (connectors/surveys.py ``verify_generic``); case delivery signs with it.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Touchpoint-Timestamp"
SIGNATURE_HEADER = "X-Touchpoint-Signature"


def sign_generic(timestamp: str, body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
