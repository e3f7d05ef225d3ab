"""Dead letters: records that could not be parsed, validated, enriched or stored.

Each keeps the original bytes, the stage that failed and a reason that names
the fix, so ``produced = stored + dead-lettered`` holds and a fixed record can
be replayed. Three rules make them trustworthy:

1. **One letter per failure.** ``letter_id`` is derived from the stage, the
   origin (source topic, connector, webhook tool or file) and a hash of the
   original bytes: a re-import or a redelivered batch produces the same id,
   and readers (``touchpoint dlq``) show each letter once.
2. **No clear text in Kafka.** The original bytes may hold an email or a
   phone number: they are sealed (AES-256-GCM, touchpoint.core.sealing) before
   they reach the topic, bound to the letter id; ``dlq replay`` opens them.
3. **Any size fits.** An original longer than ``dead_letter_max_payload_bytes``
   is cut (its full size is kept), so a 6 MiB line becomes a letter the
   broker accepts; a cut letter is evidence, not replayable.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from touchpoint.core.sealing import Sealer
from touchpoint.schemas.codec import AvroCodec

if TYPE_CHECKING:
    from touchpoint.core.settings import Settings

STAGES = ("connector.parse", "connector.validate", "decode", "validate", "enrich", "store", "deliver")
CONNECTOR_STAGES = frozenset({"connector.parse", "connector.validate"})
_NAMESPACE = uuid.UUID("0b5c1f0e-3c55-5d7a-8a40-7d1e2f9c6a11")


def letter_id(stage: str, origin: str, payload: bytes) -> str:
    """The same failure of the same bytes from the same place is the same letter."""
    digest = hashlib.sha256(payload).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, f"{stage}\x1f{origin}\x1f{digest}"))


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
    origin: str | None = None,
    source: str | None = None,
    signal_id: str | None = None,
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A letter with its original bytes in clear (sealed only by :class:`DeadLetterCodec` on the way out)."""
    if stage not in STAGES:
        raise ValueError(f"unknown dead-letter stage {stage!r}; known: {STAGES}")
    origin = origin or topic or "unknown"
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
        "letter_id": letter_id(stage, origin, payload),
        "origin": origin,
        "source": source,
        "signal_id": signal_id,
        "payload_sealed": False,
        "payload_size": len(payload),
        "payload_truncated": False,
    }


class DeadLetterCodec:
    """Letters to topic bytes (cut, sealed, Avro) and back; opens a letter's original bytes for replay."""

    def __init__(self, sealer: Sealer, max_payload_bytes: int) -> None:
        self.sealer = sealer
        self.max_payload_bytes = max_payload_bytes
        self.avro = AvroCodec.for_subject("dead_letter")

    @classmethod
    def from_settings(cls, settings: "Settings") -> "DeadLetterCodec":
        return cls(Sealer.from_settings(settings), settings.dead_letter_max_payload_bytes)

    def encode(self, letter: dict[str, Any]) -> bytes:
        payload: bytes = letter["payload"]
        if letter.get("payload_sealed"):
            return self.avro.encode(letter)  # already protected (a letter read back and sent on)
        kept = payload[: self.max_payload_bytes]
        sealed = self.sealer.seal(kept, aad=letter["letter_id"].encode())
        return self.avro.encode({
            **letter, "payload": sealed, "payload_sealed": True, "payload_size": len(payload),
            "payload_truncated": len(kept) < len(payload),
        })  # fmt: skip

    def decode(self, data: bytes) -> dict[str, Any]:
        """The letter as stored (payload still sealed); v1 letters get their id computed here."""
        letter = self.avro.decode(data)
        if not letter.get("letter_id"):  # written before letters had ids
            letter["origin"] = letter.get("origin") or letter.get("source_topic") or "unknown"
            letter["letter_id"] = letter_id(letter["stage"], letter["origin"], letter["payload"])
            letter["payload_size"] = len(letter["payload"])
        return letter

    def original(self, letter: dict[str, Any]) -> bytes:
        """The original bytes (opened when sealed); raises SealError naming the key to use."""
        if not letter.get("payload_sealed"):
            return letter["payload"]
        return self.sealer.open(letter["payload"], aad=letter["letter_id"].encode())
