"""Steps used only by the runner tests (importable as ``runsteps:Name`` with this folder on sys.path)."""

from __future__ import annotations

import os
import time


class SlowStep:
    """A map step that sleeps per batch (so a test can kill the run mid-stream) and tags rows."""

    def __init__(self, seconds: float = 0.05, touch: str | None = None, touch_at: int = -1):
        self.seconds = seconds
        self.touch = touch
        self.touch_at = touch_at
        self.calls = 0
        self.stats = {"batches": 0}

    def __call__(self, batch):
        time.sleep(self.seconds)
        self.calls += 1
        self.stats["batches"] += 1
        if self.touch and self.calls == self.touch_at:
            with open(self.touch, "a", encoding="utf-8") as fh:  # the input changes under the run
                fh.write("\n")
        return [dict(g, slow=True) for g in batch]


class DropOdd:
    """A map step that keeps rows whose ``n`` is even: a filter whose counts can be checked."""

    def __init__(self, field: str = "n"):
        self.field = field
        self.stats = {"dropped": 0}

    def __call__(self, batch):
        out = [g for g in batch if int(g.get(self.field, 0)) % 2 == 0]
        self.stats["dropped"] += len(batch) - len(out)
        return out


class FirstSeen:
    """A whole-stream step: keeps the first group per prompt across all chunks."""

    def __init__(self, key: str = "prompt"):
        self.key = key
        self.stats = {"duplicates": 0}

    def process(self, batches):
        seen = set()
        for batch in batches:
            out = []
            for g in batch:
                k = str(g.get(self.key))
                if k in seen:
                    self.stats["duplicates"] += 1
                    continue
                seen.add(k)
                out.append(g)
            yield out


class Crash:
    """Fails at a given call, to test that an error leaves a resumable state."""

    def __init__(self, at: int = 3, env: str = "RUNSTEPS_CRASH", flag: str | None = None):
        self.at = at
        self.env = env
        self.flag = flag  # crash only while this file exists (reaches Ray workers, unlike env changes)
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        armed = os.path.exists(self.flag) if self.flag else bool(os.environ.get(self.env))
        if armed and self.calls == self.at:
            raise RuntimeError("boom")
        return batch


class Numbered:
    """A whole-stream step that keeps every group and stamps its position in the stream.

    Unlike a dedup step it hides nothing: a row replayed twice on resume shifts every later
    ``seq`` and adds a row, so a fault test comparing with an uninterrupted run sees it.
    """

    def __init__(self, field: str = "seq"):
        self.field = field
        self.stats = {"numbered": 0}

    def process(self, batches):
        seq = 0
        for batch in batches:
            out = []
            for g in batch:
                out.append(dict(g, **{self.field: seq}))
                seq += 1
            self.stats["numbered"] += len(out)
            yield out


class Hold:
    """A pass-through map step that a fault test can stop at a chosen point.

    With ``RUNSTEPS_HOLD_<NAME>=N:PATH`` in the environment, the N-th call in this process
    creates PATH and then blocks for good, so the test (polling for PATH) kills the run at a
    point chosen from progress, not after a guessed delay. Without it, it does nothing.
    """

    def __init__(self, name: str = "hold"):
        self.name = name
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        spec = os.environ.get(f"RUNSTEPS_HOLD_{self.name.upper()}")
        if spec:
            at, _, path = spec.partition(":")
            if self.calls == int(at):
                import threading

                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(str(os.getpid()))
                threading.Event().wait()  # until the test kills this process
        return batch


class HoldOnNode:
    """A pass-through map step that, on the Ray node ``node`` only, creates ``marker`` and
    waits for ``release`` to exist, so a test can kill that node while a task is inside a
    step (synchronised on files, not on guessed delays). Elsewhere it does nothing."""

    def __init__(self, node: str = "", marker: str = "", release: str = "", at: int = 1, timeout: float = 120.0):
        self.node, self.marker, self.release, self.at, self.timeout = node, marker, release, at, timeout
        self.calls = 0

    def __call__(self, batch):
        import time

        import ray

        if not (ray.is_initialized() and ray.get_runtime_context().get_node_id() == self.node):
            return batch
        self.calls += 1
        if self.calls == self.at:  # the at-th batch this process sees on that node
            with open(self.marker, "w", encoding="utf-8") as fh:
                fh.write(str(os.getpid()))
            end = time.monotonic() + self.timeout
            while not os.path.exists(self.release) and time.monotonic() < end:
                time.sleep(0.05)  # polling for the test's release file, with a deadline
        return batch

