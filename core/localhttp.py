"""Serving an aiohttp app on 127.0.0.1 on a port the OS picks (the demo's local inbox, test servers)."""

from __future__ import annotations

from aiohttp import web


async def start_local(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1 and a free port; returns the runner (``await runner.cleanup()`` stops it)
    and the port. Port 0 lets the OS choose, so two servers never race for one port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
