"""Exponential backoff, one rule for everything that retries (HTTP sources, the store)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential with "equal jitter": the ceiling doubles each attempt up to
    ``max_s``; half of it is fixed, half random, so many clients that failed
    together do not retry together.
    """
    ceiling = min(max_s, initial_s * 2 ** (max(attempt, 1) - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
