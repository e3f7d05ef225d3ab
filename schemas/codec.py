"""Avro encoding of Kafka message values, with the writer's schema version in every message.

Wire format (the same framing as Confluent's, so a schema registry can replace
the files later): one magic byte ``0x00``, a 4-byte big-endian schema id, then
the Avro binary body. The id is ``subject_code * 1000 + version``.

Compatibility rule, checked by tests: a new version of a subject only *appends*
fields that have defaults. That gives both directions:

* new reader, old writer: the reader resolves the old writer schema (known by
  id) to its own and fills the defaults;
* old reader, new writer: the reader does not know the new id, so it decodes
  with its newest schema. Because the new fields are appended, the body starts
  with exactly the bytes the old schema describes; the extra tail is ignored.
"""

from __future__ import annotations

import io
import json
import re
import struct
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import fastavro
from fastavro.validation import ValidationError, validate

MAGIC = 0
HEADER = struct.Struct(">bI")
SUBJECT_CODES = {"raw_signal": 1, "enriched_signal": 2, "dead_letter": 3, "action": 4}
_FILE_NAME = re.compile(r"^(?P<subject>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


class DecodeError(ValueError):
    """The bytes are not a Touchpoint Avro message this reader can understand."""


class EncodeError(ValueError):
    """The record does not fit the writer schema."""


def load_schema_files(subject: str) -> dict[int, dict[str, Any]]:
    """All versions of ``subject`` shipped in ``schemas/avro``, by version number."""
    found: dict[int, dict[str, Any]] = {}
    for entry in resources.files("touchpoint.schemas").joinpath("avro").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match and match["subject"] == subject:
            found[int(match["version"])] = json.loads(entry.read_text(encoding="utf-8"))
    if not found:
        raise FileNotFoundError(f"no schemas/avro/{subject}.v*.avsc found")
    return found


def array_fields(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level fields that are arrays (alone or in a union); records here nest no arrays deeper."""

    def is_array(kind: Any) -> bool:
        return any(is_array(k) for k in kind) if isinstance(kind, list) else isinstance(kind, dict) and kind.get("type") == "array"

    return tuple(f["name"] for f in schema.get("fields", []) if is_array(f["type"]))


@dataclass
class AvroCodec:
    """Encodes with the newest known version of a subject; decodes any version (see module doc)."""

    subject: str
    versions: Mapping[int, dict[str, Any]]
    _parsed: dict[int, Any] = field(init=False, repr=False)
    _array_fields: tuple[str, ...] = field(init=False, repr=False)  # of the version this codec writes

    def __post_init__(self) -> None:
        if self.subject not in SUBJECT_CODES:
            raise ValueError(f"unknown subject {self.subject!r}; known: {sorted(SUBJECT_CODES)}")
        # named_schemas is per version: versions share record names (Score...).
        self._parsed = {v: fastavro.parse_schema(s, named_schemas={}) for v, s in self.versions.items()}
        self._array_fields = array_fields(self.versions[self.version])

    @classmethod
    def for_subject(cls, subject: str) -> "AvroCodec":
        return cls(subject, load_schema_files(subject))

    @property
    def version(self) -> int:
        """The version this codec writes (its newest)."""
        return max(self._parsed)

    def schema_id(self, version: int) -> int:
        return SUBJECT_CODES[self.subject] * 1000 + version

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The record in the newest version; raises EncodeError naming the field that does not fit.

        fastavro's writer checks every value it writes, so a separate validation pass only runs
        when the writer refused, to name the problem. (Validating first as well was a third of
        encoding a record: it walks every union branch, and the writer does it again.) The one
        thing the writer lets through, a string where an array belongs (it writes the
        characters), is checked here.
        """
        schema = self._parsed[self.version]
        for name in self._array_fields:
            if isinstance(record.get(name), (str, bytes)):
                raise EncodeError(f"{self.subject} v{self.version}: field {name!r} is an array; got a string")
        buf = io.BytesIO()
        buf.write(HEADER.pack(MAGIC, self.schema_id(self.version)))
        try:
            fastavro.schemaless_writer(buf, schema, record)
        except Exception as exc:  # the writer raises TypeError, ValueError, ... : ask the validator for the reason
            try:
                validate(record, schema, raise_errors=True)
            except ValidationError as invalid:
                raise EncodeError(f"{self.subject} v{self.version}: {invalid}") from exc
            raise EncodeError(f"{self.subject} v{self.version}: {type(exc).__name__}: {exc}") from exc
        return buf.getvalue()

    def writer_version(self, data: bytes) -> int:
        """The schema version that wrote ``data`` (raises DecodeError if not ours)."""
        if len(data) < HEADER.size:
            raise DecodeError(f"message too short for the Avro header ({len(data)} bytes)")
        magic, schema_id = HEADER.unpack_from(data)
        subject_code, version = divmod(schema_id, 1000)
        if magic != MAGIC or subject_code != SUBJECT_CODES[self.subject]:
            raise DecodeError(
                f"not a {self.subject} message (magic={magic}, schema id={schema_id}); "
                "was it produced by a Touchpoint connector?"
            )
        return version

    def decode(self, data: bytes) -> dict[str, Any]:
        version = self.writer_version(data)
        reader = self._parsed[self.version]
        if version in self._parsed:
            writer = self._parsed[version]
        elif version > self.version:
            writer = reader  # appended fields only: our schema reads the prefix
        else:
            raise DecodeError(f"{self.subject} v{version} is older than any schema this reader knows")
        body = io.BytesIO(data[HEADER.size :])
        try:
            return fastavro.schemaless_reader(body, writer, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt {self.subject} v{version} body: {type(exc).__name__}: {exc}") from exc
