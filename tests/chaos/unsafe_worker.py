"""The negative control: a worker that commits a sink batch's offsets *before* inserting it.

`python -m tests.chaos.unsafe_worker worker ...` runs the real `touchpoint
worker` with one change: the sink releases (acks) its batch first and then
never inserts it. Killing this worker after a commit must make the
crash-safety check fail; if it did not, the check could not see a loss.
"""

from __future__ import annotations

import asyncio
import sys

import touchpoint.pipeline.app as app_module
from touchpoint.cli import main
from touchpoint.pipeline.acks import InFlight


class CommitFirst(InFlight):
    async def submit(self, events, work) -> None:  # type: ignore[no-untyped-def]
        if self.status.name != "sink_batch":
            return await super().submit(events, work)
        for event in events:  # the bug under test: the batch is acked (committed on the next tick) before it is safe
            await self.stream.ack(event)
        await asyncio.sleep(3600)  # ...and the insert never happens before the crash


app_module.InFlight = CommitFirst

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
