"""Grading lanes: threads that each own one killable worker process and share one queue.

Why lanes and not one pool: ``VerifyPool.map`` returns when its whole batch is graded, so
a single pool would hold every request behind a hostile completion until the worker is
killed. With one lane per worker, a lane stuck on ``\\boxed{9^{9^{9^{9}}}}`` holds only
the items it took; the other lanes keep taking items from the queue, and the stuck one is
killed at the per-completion time limit and comes back with a fresh worker.

Requests are cut into items on a shared queue, so a batch of 256 spreads over every lane
and many small requests share one lane's round trip. A request whose time limit passes is
cancelled: its queued items are dropped and its missing verdicts become timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gradeset.serve.protocol import Item
from gradeset.verify.pool import VerifyPool
from gradeset.verify.verdict import Verdict

REQUEST_TIMEOUT = "timeout (request time limit)"


class Ticket:
    """One request's items and verdicts; resolves an asyncio future when the last verdict is in."""

    def __init__(self, items: list[Item], loop: asyncio.AbstractEventLoop):
        self.items = items
        self.verdicts: list[Verdict | None] = [None] * len(items)
        self.left = len(items)
        self.cancelled = False
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self._lock = threading.Lock()
        if not items:
            self.future.set_result(self.verdicts)

    def put(self, index: int, verdict: Verdict) -> None:
        with self._lock:
            if self.verdicts[index] is not None:
                return
            self.verdicts[index] = verdict
            self.left -= 1
            done = self.left == 0
        if done:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.verdicts)

    def cancel(self) -> list[Verdict]:
        """Stop grading this request; verdicts not in yet become request-time-limit timeouts."""
        with self._lock:
            self.cancelled = True
            return [v if v is not None else Verdict(0.0, False, None, REQUEST_TIMEOUT) for v in self.verdicts]


class Lanes:
    """``workers`` lanes over ``verifiers`` (name -> picklable verifier), each item limited to ``timeout`` s."""

    def __init__(self, verifiers: dict[str, Callable], workers: int = 1, timeout: float = 5.0, chunk: int = 32,
                 budgets: dict[str, float] | None = None):
        self.verifiers = verifiers
        self.timeout = float(timeout)
        self.chunk = max(1, int(chunk))
        self.budgets = budgets or {}
        self.queue: deque[tuple[Ticket, int]] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.busy: list[float | None] = [None] * max(1, int(workers))  # since when each lane is grading
        self.pools: list[VerifyPool] = []
        self.graded = 0
        self.dropped = 0
        self.threads = []
        for i in range(len(self.busy)):
            pool = VerifyPool(verifiers, workers=1, timeout=self.timeout, chunk=self.chunk, budgets=self.budgets)
            pool.map([])  # start the worker now, not on the first request
            self.pools.append(pool)
            t = threading.Thread(target=self._run, args=(i,), name=f"gradeset-lane-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    @property
    def timeouts(self) -> int:
        return sum(p.timeouts for p in self.pools)

    @property
    def crashes(self) -> int:
        return sum(p.crashes for p in self.pools)

    def submit(self, ticket: Ticket) -> None:
        with self.cond:
            self.queue.extend((ticket, i) for i in range(len(ticket.items)))
            self.cond.notify_all()

    def queued(self) -> int:
        return len(self.queue)

    def busy_lanes(self) -> int:
        return sum(b is not None for b in self.busy)

    def _take(self) -> list[tuple[Ticket, int]]:
        """Up to ``chunk`` live items, fewer when other lanes are idle so a batch spreads out."""
        with self.cond:
            while not self.queue and not self.stopping:
                self.cond.wait()
            idle = max(1, len(self.busy) - self.busy_lanes())
            want = min(self.chunk, max(1, -(-len(self.queue) // idle)))
            taken = []
            while self.queue and len(taken) < want:
                ticket, i = self.queue.popleft()
                if ticket.cancelled:
                    self.dropped += 1
                    continue
                taken.append((ticket, i))
            return taken

    def _run(self, lane: int) -> None:
        pool = self.pools[lane]
        while not self.stopping:
            taken = self._take()
            if not taken:
                continue
            self.busy[lane] = time.monotonic()
            try:
                verdicts = pool.map([(t.items[i].task, t.items[i].completion, t.items[i].gold) for t, i in taken])
            except Exception as exc:  # a broken pool must not lose the requests waiting on it
                verdicts = [Verdict(0.0, False, None, f"error: {type(exc).__name__}: {exc}")] * len(taken)
                with contextlib.suppress(Exception):
                    pool.close()
            finally:
                self.busy[lane] = None
            for (ticket, i), verdict in zip(taken, verdicts, strict=True):
                ticket.put(i, verdict)
            self.graded += len(taken)

    def close(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for pool in self.pools:
            with contextlib.suppress(Exception):
                pool.close()

    def stats(self) -> dict[str, Any]:
        return {"workers": len(self.busy), "busy_workers": self.busy_lanes(), "queued_items": self.queued(),
                "graded": self.graded, "timeouts": self.timeouts, "worker_crashes": self.crashes,
                "dropped_items": self.dropped}
