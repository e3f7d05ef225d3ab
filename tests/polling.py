"""Waiting for an eventually true condition in async tests (bounded, never a fixed sleep)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable


async def wait_for(predicate: Callable[[], Awaitable[Any]], timeout_s: float = 60.0) -> Any:
    """The first truthy value ``predicate`` returns, polling every 0.3 s; fails after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s}s")
