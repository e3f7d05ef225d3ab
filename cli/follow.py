"""`touchpoint import --wait`: follow what an import produced until each signal is stored or dead-lettered.

The store is asked which of the import's signal ids it holds (through the
running worker's API when the stack holds a chdb folder, cli/reading.py),
the dead-letter topic which of them failed in the worker; a progress bar
shows stored + dead-lettered against produced, and the summary ends with
``stored / dead-lettered`` (and what is still in flight if it gave up).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from touchpoint.core.settings import Settings
from touchpoint.pipeline.dlq import read_letters
from touchpoint.reading import store_reader

POLL_S = 1.0
LETTERS_EVERY = 5  # polls between reads of the dead-letter topic (it can be long)


@dataclass
class Followed:
    produced: int
    stored: int
    dead_lettered: int

    @property
    def in_flight(self) -> int:
        return self.produced - self.stored - self.dead_lettered


def follow(settings: Settings, signal_ids: list[str], console: Console, timeout_s: float) -> Followed:
    """Poll until every id is stored or dead-lettered in the worker, or ``timeout_s`` passed."""
    waiting = set(signal_ids)
    stored: set[str] = set()
    lettered: set[str] = set()
    columns = (TextColumn("stored or dead-lettered"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    deadline = time.monotonic() + timeout_s
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("following", total=len(waiting))
        polls = 0
        while waiting and time.monotonic() < deadline:
            with store_reader(settings) as read:  # never held between polls: a starting worker needs the chdb folder
                stored |= set(read("stored_ids", sorted(waiting)))
            if polls % LETTERS_EVERY == 0:
                letters = asyncio.run(read_letters(settings))
                lettered |= {letter.record.get("signal_id") for letter in letters if not letter.replayed} & waiting
            waiting -= stored | lettered
            progress.update(task, completed=len(signal_ids) - len(waiting))
            polls += 1
            if waiting:
                time.sleep(POLL_S)
    return Followed(len(signal_ids), len(stored), len(lettered - stored))
