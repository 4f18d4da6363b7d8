"""Throughput limits: requests/minute, tokens/minute, shared back-off after a 429.

Providers enforce per-minute quotas; going over them earns 429s, and every 429 costs a
round trip plus a wait. Pacing requests evenly (rpm) and reserving tokens before sending
(tpm) keeps a run under quota instead of bouncing off it. When one request is told to
wait (``Retry-After``), every request waits: the quota is shared, so the others would
only collect 429s too.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time


class RateLimiter:
    """Async gate before each request attempt; safe for many concurrent tasks on one loop."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 clock=time.monotonic, sleep=asyncio.sleep):
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._tokens = float(tpm) if tpm else 0.0
        self._tokens_at = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock() if (rpm or tpm) else None

    def must_wait(self) -> bool:
        """False when ``acquire`` would return at once (no limits, no pause): skip the call."""
        return self._lock is not None or self._paused_until > self._clock()

    def rebind(self) -> None:
        """A fresh lock for a new event loop (asyncio locks belong to the loop that used them)."""
        if self._lock is not None:
            self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a server said Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    async def _wait_pause(self) -> None:
        while True:
            left = self._paused_until - self._clock()
            if left <= 0:
                return
            await self._sleep(left)

    def _refill(self) -> None:
        now = self._clock()
        if self.tpm:
            self._tokens = min(float(self.tpm), self._tokens + (now - self._tokens_at) * self.tpm / 60.0)
        self._tokens_at = now

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until a request of about ``tokens`` tokens may be sent."""
        await self._wait_pause()
        if self._lock is None:
            return
        async with self._lock:  # FIFO: requests are released in the order they asked
            if self.rpm:
                interval = 60.0 / self.rpm
                now = self._clock()
                slot = max(now, self._next_slot)
                self._next_slot = slot + interval
                if slot > now:
                    await self._sleep(slot - now)
            if self.tpm:
                need = min(float(tokens), float(self.tpm))
                self._refill()
                while self._tokens < need:
                    await self._sleep((need - self._tokens) * 60.0 / self.tpm)
                    self._refill()
                self._tokens -= need
            await self._wait_pause()

    def settle(self, reserved: int, used: int) -> None:
        """Give back tokens reserved but not used (max_tokens is an upper bound)."""
        if self.tpm and used < reserved:
            self._refill()
            self._tokens = min(float(self.tpm), self._tokens + (reserved - used))


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random, capped.

    The random half spreads out retries of requests that failed together (a server
    restart), so they do not all return in the same instant.
    """
    r = rng or random
    full = min(cap, base * (2 ** attempt))
    return full / 2 + r.random() * full / 2


def parse_retry_after(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after") or get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
