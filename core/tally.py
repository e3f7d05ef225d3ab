"""Counts of what a job did to records, in one shape: read, produced, dead-lettered.

Imports, connector passes and dead-letter replays all report this balance
(``read = produced + dead-lettered + whatever the job skipped``), and all add
passes up the same way; a job's own counts are extra int fields of a subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Tally:
    read: int = 0
    produced: int = 0
    dead_lettered: int = 0

    def add(self, other: "Tally") -> None:
        """Add every int count of ``other`` (a subclass's own counts too) to this one."""
        for item in fields(other):
            value = getattr(other, item.name)
            if isinstance(value, int) and not isinstance(value, bool) and hasattr(self, item.name):
                setattr(self, item.name, getattr(self, item.name) + value)
