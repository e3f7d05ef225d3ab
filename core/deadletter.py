"""Dead letters: records that could not be parsed, validated, enriched or stored.

Each keeps the original bytes, the stage that failed and a reason that names the
fix, so `produced = stored + dead-lettered` holds and a fixed record can be replayed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from touchpoint.schemas.codec import AvroCodec

STAGES = ("connector.parse", "connector.validate", "decode", "validate", "enrich", "store", "deliver")


def dead_letter(
    stage: str,
    reason: str,
    payload: bytes,
    *,
    error: BaseException | None = None,
    key: bytes | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    if stage not in STAGES:
        raise ValueError(f"unknown dead-letter stage {stage!r}; known: {STAGES}")
    return {
        "stage": stage,
        "reason": reason,
        "error_type": type(error).__name__ if error else "Invalid",
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": key,
        "payload": payload,
        "failed_at": datetime.now(timezone.utc),
        "context": {k: str(v) for k, v in (context or {}).items()},
    }


_codec: AvroCodec | None = None


def encode_dead_letter(record: dict[str, Any]) -> bytes:
    global _codec  # a parsed schema, not state: safe to share
    if _codec is None:
        _codec = AvroCodec.for_subject("dead_letter")
    return _codec.encode(record)
