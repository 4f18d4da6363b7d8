"""Calling a running ``gradeset serve`` from Python: plain functions over the standard library
(sync) or aiohttp (async, when installed; a thread otherwise)."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from typing import Any

ENV_URL = "GRADESET_REWARD_URL"


class ServerUnavailable(Exception):
    """The server could not be reached (connection refused, reset, timed out): a fallback may grade."""


class ServerRefused(Exception):
    """The server answered with an error status: the request itself is wrong, retrying will not help."""


def base_url(url: str | None = None) -> str | None:
    """The server's root URL from ``url`` or $GRADESET_REWARD_URL (``/v1/grade`` or ``/get_reward`` suffixes allowed)."""
    url = url or os.environ.get(ENV_URL) or None
    if not url:
        return None
    url = url.rstrip("/")
    for suffix in ("/v1/grade", "/get_reward", "/health"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _payload(items: list[dict]) -> bytes:
    return json.dumps({"items": items}).encode()


def _verdicts(status: int, body: bytes, n: int) -> list[dict]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if status != 200:
        raise ServerRefused(f"gradeset serve answered {status}: {data.get('error', body[:200])}")
    verdicts = data.get("verdicts") if isinstance(data, dict) else None
    if not isinstance(verdicts, list) or len(verdicts) != n:
        raise ServerRefused(f"gradeset serve sent {type(verdicts).__name__} for {n} items")
    return verdicts


def grade_remote(url: str, items: list[dict], timeout: float = 300.0) -> list[dict]:
    """POST items (``{completion, gold, task?}``) to ``url/v1/grade``; the verdict dicts."""
    req = urllib.request.Request(f"{url}/v1/grade", data=_payload(items), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return _verdicts(resp.status, resp.read(), len(items))
    except urllib.error.HTTPError as exc:
        return _verdicts(exc.code, exc.read(), len(items))
    except (urllib.error.URLError, OSError) as exc:
        raise ServerUnavailable(f"gradeset serve at {url} unreachable: {getattr(exc, 'reason', exc)}") from exc


async def grade_remote_async(url: str, items: list[dict], timeout: float = 300.0) -> list[dict]:
    """The async twin of :func:`grade_remote` (aiohttp when installed)."""
    try:
        import aiohttp
    except ImportError:
        return await asyncio.to_thread(grade_remote, url, items, timeout)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.post(f"{url}/v1/grade", data=_payload(items),
                             headers={"Content-Type": "application/json"}) as resp:
            return _verdicts(resp.status, await resp.read(), len(items))
    except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
        raise ServerUnavailable(f"gradeset serve at {url} unreachable: {exc}") from exc


def health(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
        return json.loads(resp.read())
