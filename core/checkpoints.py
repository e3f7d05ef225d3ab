"""Durable connector checkpoints: one small JSON file per connector.

A checkpoint is the cursor a connector resumes from. It is written atomically
(temp file in the same folder, fsync, ``os.replace``, fsync the folder), so a
crash leaves either the old checkpoint or the new one, never half of one. The
framework (connectors/framework.py) decides *when* to write: only after the
broker acknowledged every record before the cursor.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

Cursor = dict[str, Any]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class CheckpointStore:
    """``settings.data_dir / "checkpoints" / <connector>.json``; file IO runs off the event loop."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, connector: str) -> Path:
        if not connector:
            raise ValueError("a connector needs a name to keep a checkpoint; set `name:` in the config")
        return self.folder / f"{_SAFE.sub('_', connector)}.json"

    def load_sync(self, connector: str) -> Cursor | None:
        """The saved cursor, or None when the connector never checkpointed."""
        path = self.path_for(connector)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ValueError(f"checkpoint {path} is not valid JSON ({exc}); fix or delete it to start over") from exc
        return state.get("cursor")

    def save_sync(self, connector: str, cursor: Cursor) -> None:
        """Replace the checkpoint atomically and durably."""
        path = self.path_for(connector)
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"connector": connector, "cursor": cursor, "saved_at": datetime.now(timezone.utc).isoformat()}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.folder)

    async def load(self, connector: str) -> Cursor | None:
        return await asyncio.to_thread(self.load_sync, connector)

    async def save(self, connector: str, cursor: Cursor) -> None:
        await asyncio.to_thread(self.save_sync, connector, cursor)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
