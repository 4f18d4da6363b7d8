"""Run the reward service until SIGINT/SIGTERM: the only place that owns an event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from gradeset.serve.app import RewardApp, ServeConfig
from gradeset.serve.http import HTTPServer


async def serve_async(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000,
                      on_ready: Callable[[int], None] | None = None, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or a signal arrives); ``on_ready(port)`` once it accepts connections."""
    app = RewardApp(config)
    server = HTTPServer(app.handle, config.max_request_bytes)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        bound = await server.start(host, port)
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
    finally:
        await server.close()
        app.close()


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, stream=None) -> int:
    """Blocking entry point of ``gradeset serve``; prints the URL (with the real port for ``--port 0``)."""
    out = stream or sys.stdout

    def ready(bound: int) -> None:
        print(f"gradeset serve: listening on http://{host}:{bound} (tasks {', '.join(config.tasks)}; "
              f"{config.workers} workers; {config.timeout:g}s per completion, {config.request_timeout:g}s per request)",
              file=out, flush=True)

    asyncio.run(serve_async(config, host, port, on_ready=ready))
    return 0
