"""Real faults for tests: a store whose disk refuses writes (no mocks, the engine itself fails)."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from touchpoint.pipeline.store import Store


def table_folder(store: Store, table: str) -> Path:
    rows = store.query(
        "SELECT data_paths FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": store.database, "t": table},
    )
    return Path(rows[0]["data_paths"][0])


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse new files, as a full or failing disk does, then restore it.

    As root (CI) permission bits do not stop writes, so the folder is made
    immutable (chattr +i: 'Operation not permitted' even for root);
    otherwise read-only permissions do the same.
    """
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
