"""Brand-editable YAML files (taxonomy packs, emotion descriptions) read with line numbers for their errors.

A brand edits these files without code, so a mistake must come back as one
sentence naming the file, the line and the fix — never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

LINE = "__line__"


class DataFileError(ValueError):
    """A brand-editable file is missing, malformed or inconsistent; the message names the line and the fix."""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records each mapping's first line (1-based) under ``__line__``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE] = node.start_mark.line + 1
        return mapping


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """The file's top-level mapping, every nested mapping carrying its ``__line__``."""
    if not path.is_file():
        raise DataFileError(f"{path}: no such {what} file; fix the path (or the pack name) in your settings")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise DataFileError(f"{path}{line}: not valid YAML ({exc.problem}); check indentation and quotes there") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataFileError(f"{path}: not readable YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: must be a mapping with the keys of a {what} (see the bundled files for the format)")
    return data


def where(path: Path, item: Any) -> str:
    """'FILE line N' for a mapping read by :func:`read_yaml` (just 'FILE' otherwise)."""
    line = item.get(LINE) if isinstance(item, dict) else None
    return f"{path} line {line}" if line else str(path)


def check_keys(path: Path, item: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse unknown keys (a typo such as ``exmaples`` would otherwise be silently ignored)."""
    allowed = set(allowed)
    unknown = sorted(k for k in item if k != LINE and k not in allowed)
    if unknown:
        raise DataFileError(
            f"{where(path, item)}: unknown key {unknown[0]!r} in {what}; the keys are {', '.join(sorted(allowed))}"
        )


def text_list(path: Path, item: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    """A list of non-empty strings under ``key`` (missing = empty)."""
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataFileError(
            f"{where(path, item)}: `{key}` of {what} must be a list of non-empty texts, e.g. [\"first\", \"second\"]"
        )
    return tuple(v.strip() for v in value)
