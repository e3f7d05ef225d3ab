"""Sealed bytes: what customers wrote travels through Kafka only encrypted.

Two things in Touchpoint's topics can carry clear-text personal data: the
text of a raw signal (a customer may type an email or phone number into a
comment; redaction happens later, in the enrich stage) and the original
bytes a dead letter keeps. Both are sealed with AES-256-GCM (``cryptography``
from PyPI): confidential, and tamper-evident (a changed byte fails to open).

Wire format: ``b"TPS1"`` + 4-byte key id + 12-byte random nonce + ciphertext
and tag. The key id (the first bytes of the key's SHA-256) says which key
sealed a blob, so a mismatch names the fix instead of failing obscurely.
``aad`` binds a blob to its context (e.g. the signal_id), so a sealed text
cannot be moved onto another signal.

The key comes from settings: ``sealing_key`` (32 random bytes, base64), or,
when unset, derived from ``customer_id_secret`` with HKDF-SHA256, so one
secret protects a deployment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from touchpoint.core.settings import Settings

MAGIC = b"TPS1"
_NONCE = 12
_KEY_ID = 4
_HEADER = len(MAGIC) + _KEY_ID + _NONCE


class SealError(ValueError):
    """A blob that cannot be opened: wrong key, changed bytes or not sealed at all; the message names the fix."""


class Sealer:
    """Seals and opens byte strings with one AES-256-GCM key (module docstring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).digest()[:_KEY_ID]

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Sealer":
        if settings.sealing_key:
            try:
                key = base64.b64decode(settings.sealing_key, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != 32:
                raise ValueError(
                    "TOUCHPOINT_SEALING_KEY must be 32 random bytes in base64, e.g. "
                    "`python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'`"
                )
            return cls(key)
        secret = settings.require_customer_id_secret()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"touchpoint", info=b"touchpoint sealing v1")
        return cls(hkdf.derive(secret.encode()))

    def seal(self, data: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(_NONCE)
        return MAGIC + self.key_id + nonce + self._aead.encrypt(nonce, data, aad or None)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        if not is_sealed(blob):
            raise SealError("not a sealed blob (no TPS1 header)")
        key_id = blob[len(MAGIC) : len(MAGIC) + _KEY_ID]
        if key_id != self.key_id:
            raise SealError(
                f"sealed with another key (id {key_id.hex()}, this process has {self.key_id.hex()}): "
                "run with the TOUCHPOINT_SEALING_KEY / TOUCHPOINT_CUSTOMER_ID_SECRET that wrote it"
            )
        nonce = blob[len(MAGIC) + _KEY_ID : _HEADER]
        try:
            return self._aead.decrypt(nonce, blob[_HEADER:], aad or None)
        except InvalidTag:
            raise SealError("the sealed bytes were changed or belong to another record (authentication failed)") from None


def is_sealed(blob: bytes | None) -> bool:
    return bool(blob) and blob[: len(MAGIC)] == MAGIC and len(blob) >= _HEADER + 16  # type: ignore[index]
