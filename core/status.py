"""Is a part of this process working right now, and if not, since when and why?

Parts that retry instead of failing (the sink's store calls, an agent's
batch, a connector) record their state here; readiness (/readyz) and the
``touchpoint_component_failing`` gauge read it, so a retry loop is never
silent: a worker that waits for its store says so, with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from touchpoint.core import metrics


@dataclass
class ComponentStatus:
    name: str
    failing_since: float | None = None
    reason: str = ""
    failures: int = 0
    last_ok: float | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.failing_since is None

    def failed(self, reason: str) -> None:
        if self.failing_since is None:
            self.failing_since = time.time()
        self.failures += 1
        self.reason = reason
        metrics.COMPONENT_FAILING.labels(self.name).set(1)

    def recovered(self) -> None:
        self.failing_since = None
        self.reason = ""
        self.last_ok = time.time()
        metrics.COMPONENT_FAILING.labels(self.name).set(0)

    def describe(self) -> str:
        if self.ok:
            return "ok"
        return f"failing for {time.time() - (self.failing_since or time.time()):.0f}s ({self.failures} attempts): {self.reason}"
