"""Worker processes with hard time limits: a slow grade is killed, never waited for.

SIGALRM-based limits (math-verify's) only work in the main thread of the main
process; under threads, Ray actors or a C extension stuck in a big-integer power they
do nothing. Here each worker is a process that grades a chunk of items and reports
each verdict as soon as it has it. When a worker makes no progress for ``timeout``
seconds the parent kills it (SIGKILL), marks the item it was on as a timeout, gives
the rest of its chunk to a fresh worker and carries on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from gradeset.verify.verdict import Verdict

Item = tuple[str, str, Any]  # (verifier key, completion, gold)


def _worker_main(conn, verifiers: dict[str, Callable]) -> None:
    # a worker ignores Ctrl-C: the parent decides when it stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        buf: list[tuple] = []
        flushed = time.monotonic()
        for idx, key, completion, gold in msg:
            verdict = run_one(verifiers[key], completion, gold)
            buf.append((idx, verdict.score, verdict.correct, verdict.parsed, verdict.detail,
                        verdict.execution_output, verdict.path))
            now = time.monotonic()
            if len(buf) >= 64 or now - flushed > 0.01:
                conn.send(buf)
                buf, flushed = [], now
        if buf:
            conn.send(buf)


def run_one(verifier: Callable, completion: str, gold: Any) -> Verdict:
    """A verifier call that turns any exception into an ungraded verdict (with the reason)."""
    try:
        v = verifier(completion, gold)
    except Exception as exc:  # a broken verifier must not stop a million-row run
        return Verdict(0.0, False, None, f"error: {type(exc).__name__}: {str(exc)[:200]}")
    if not isinstance(v, Verdict):
        return coerce(v)
    return v


def coerce(v: Any) -> Verdict:
    """Plugins may return a bool, a number or a dict; make it a Verdict."""
    if isinstance(v, bool):
        return Verdict(float(v), v, str(v))
    if isinstance(v, int | float):
        return Verdict(float(v), float(v) >= 1.0, str(v))
    if isinstance(v, dict):
        score = float(v.get("score", 1.0 if v.get("correct") else 0.0))
        return Verdict(score, bool(v.get("correct", score >= 1.0)), v.get("parsed"), v.get("detail"),
                       v.get("execution_output"))
    if isinstance(v, tuple) and len(v) >= 2:
        return Verdict(float(v[0]), bool(v[1]), *(v[2:5]))
    raise TypeError(f"verifier returned {type(v).__name__}, expected Verdict")


def _package_root() -> str:
    import gradeset

    return os.path.dirname(os.path.dirname(os.path.abspath(gradeset.__file__)))


def _worker_setup(memory_mb: int):
    def setup() -> None:
        """Linux: the kernel kills the worker if the parent dies (even mid-computation, GIL held);
        an address-space cap turns a runaway sympy expansion into a MemoryError, not a swap storm."""
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:
            pass
        if memory_mb > 0:
            import resource

            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    return setup


class _Worker:
    def __init__(self, verifiers, memory_mb: int = 4096):
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradeset.verify.worker", str(child.fileno())],
            pass_fds=(child.fileno(),), env=env, start_new_session=True, stdin=subprocess.DEVNULL,
            preexec_fn=_worker_setup(memory_mb),
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.conn.send(verifiers)
        self.pending: dict[int, tuple] = {}  # items sent, not yet answered
        self.solo = False  # a chunk of one suspect item
        self.last = time.monotonic()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and anything it started
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        self.conn.close()


class VerifyPool:
    """Grade items on ``workers`` processes; each item gets at most ``timeout`` seconds.

    ``budgets`` gives a per-verifier-key time limit when one kind of item is slower by
    design (code runs several tests).
    """

    def __init__(self, verifiers: dict[str, Callable], workers: int = 1, timeout: float = 5.0,
                 chunk: int = 32, budgets: dict[str, float] | None = None, memory_mb: int = 4096):
        self.memory_mb = int(memory_mb)
        self.verifiers = verifiers
        self.n = max(1, int(workers))
        self.timeout = float(timeout)
        self.chunk = max(1, int(chunk))
        self.budgets = budgets or {}
        self.workers: list[_Worker] = []
        self.timeouts = 0
        self.crashes = 0

    def _spawn(self) -> _Worker:
        w = _Worker(self.verifiers, self.memory_mb)
        self.workers.append(w)
        return w

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                w.conn.send(None)
        for w in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(timeout=2)
            w.kill()
        self.workers = []

    def __enter__(self) -> VerifyPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def _limit(self, key: str) -> float:
        return self.budgets.get(key, self.timeout)

    def map(self, items: Sequence[Item]) -> list[Verdict]:
        """Verdicts in the order of items.

        Workers send results in small bursts (every 64 items or 10 ms) to keep the parent
        cheap. When a worker stalls past the limit it is killed; since the parent cannot know
        which of its unanswered items hung, those items are retried one per chunk ("solo"),
        and only an item that stalls alone is recorded as a timeout.
        """
        results: list[Verdict | None] = [None] * len(items)
        queue: deque = deque((i, k, c, g) for i, (k, c, g) in enumerate(items))
        solo: deque = deque()
        for w in list(self.workers):  # a worker that died between batches is replaced quietly
            if w.proc.poll() is not None:
                self._replace(w)
        while len(self.workers) < min(self.n, max(1, len(items))):
            self._spawn()
        busy: dict[Any, _Worker] = {}
        remaining = len(items)

        def give_up(w: _Worker, detail: str) -> None:
            nonlocal remaining
            pending = list(w.pending.values())
            # a worker grades its chunk in order and flushes before it waits again, so when
            # only one item is unanswered that item is the one it is stuck on: no solo retry
            if len(pending) == 1:
                results[pending[0][0]] = Verdict(0.0, False, None, detail)
                remaining -= 1
                if detail == "timeout":
                    self.timeouts += 1
                else:
                    self.crashes += 1
            else:
                solo.extend(pending)
            w.pending = {}
            busy.pop(w.conn, None)
            self._replace(w)

        while remaining:
            for w in list(self.workers):
                if w.pending or not (queue or solo):
                    continue
                if solo:
                    batch, w.solo = [solo.popleft()], True
                else:
                    size = min(self.chunk, max(1, len(queue) // len(self.workers)))
                    batch, w.solo = [queue.popleft() for _ in range(min(size, len(queue)))], False
                try:
                    w.conn.send(batch)
                except (OSError, BrokenPipeError):
                    (solo if w.solo else queue).extendleft(reversed(batch))
                    self._replace(w)
                    continue
                w.pending = {b[0]: b for b in batch}
                w.last = time.monotonic()
                busy[w.conn] = w
            if not busy:
                continue
            now = time.monotonic()
            deadline = min(w.last + max(self._limit(p[1]) for p in w.pending.values()) for w in busy.values())
            ready = wait(list(busy), timeout=max(0.0, deadline - now))
            for conn in ready:
                w = busy.get(conn)
                if w is None:
                    continue
                try:
                    while conn.poll():
                        for idx, score, correct, parsed, detail, out, path in conn.recv():
                            if w.pending.pop(idx, None) is not None:
                                results[idx] = Verdict(score, correct, parsed, detail, out, path)
                                remaining -= 1
                        w.last = time.monotonic()
                except (EOFError, OSError):
                    # the worker died (memory limit, segfault)
                    give_up(w, "error: worker died")
                    continue
                if not w.pending:
                    del busy[conn]
            now = time.monotonic()
            for w in list(busy.values()):
                if w.pending and now - w.last > max(self._limit(p[1]) for p in w.pending.values()):
                    give_up(w, "timeout")
        return results  # type: ignore[return-value]

    def _replace(self, w: _Worker) -> None:
        w.kill()
        if w in self.workers:
            self.workers.remove(w)
        self._spawn()


def inline_map(verifiers: dict[str, Callable], items: Iterable[Item]) -> list[Verdict]:
    """Grade in this process (workers=0): no hard time limit, for debugging and tiny inputs."""
    return [run_one(verifiers[k], c, g) for k, c, g in items]
