"""Commit offsets only after the data is safe.

Faust's ``Stream.take_events`` acks every event of a batch when the loop body
ends, *even when it ends by an exception or cancellation*. A
:class:`HeldBatch` takes one extra reference on each message when the batch
arrives, so that automatic ack can never reach zero; :meth:`release` drops the
reference once the outputs are durable (broker-acknowledged or inserted). If
the body fails, the offsets stay uncommitted and the batch is redelivered:
at-least-once, made exactly-once by signal_id downstream.
"""

from __future__ import annotations

from typing import Any, Sequence


class HeldBatch:
    def __init__(self, events: Sequence[Any]) -> None:
        self.events = list(events)
        for event in self.events:
            event.message.incref()

    async def release(self, stream: Any) -> None:
        """Data is safe: let Faust commit these offsets."""
        for event in self.events:
            await stream.ack(event)
