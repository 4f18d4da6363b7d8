"""Live counters for a generation run and the progress bar that shows them.

The bar shows done/total samples and ETA (tqdm), plus requests/s, tokens/s and errors,
the numbers that tell a user whether a run is limited by the server, the quota or
failures.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Stats:
    """Counts for the run summary; they add up: planned = generated + failed (+ stopped)."""

    groups: int = 0
    planned: int = 0  # samples this run had to produce
    cached: int = 0  # samples reused from the request cache
    generated: int = 0  # samples produced now
    failed: int = 0  # samples whose request still failed after retries
    requests: int = 0  # HTTP requests / local generate calls that returned
    retries: int = 0
    errors: int = 0  # failed attempts (retried or not)
    two_step: int = 0  # samples that needed stage 2
    prompt_tokens: int = 0  # as billed: once per request (a request for n samples sends its prompt once)
    completion_tokens: int = 0
    cost: float = 0.0  # estimated from the user's prices (0 without prices)
    errors_by_message: dict[str, int] = field(default_factory=dict)  # failed samples per error message
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, int | float]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("started", "errors_by_message")}
        d["seconds"] = round(time.monotonic() - self.started, 3)
        return d

    def summary(self) -> str:
        secs = max(1e-9, time.monotonic() - self.started)
        line = (f"{self.groups} groups, {self.planned + self.cached} samples = {self.cached} cached + "
                f"{self.generated} generated + {self.failed} failed")
        stopped = self.planned - self.generated - self.failed
        if stopped > 0:
            line += f" + {stopped} not done"
        line += (f"; {self.requests} requests, {self.retries} retries, {self.two_step} two-step; "
                 f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens; "
                 f"{self.requests / secs:.1f} req/s")
        return line


class Progress:
    """A tqdm bar on stderr (off when disabled or GRADESET_NO_PROGRESS is set)."""

    def __init__(self, stats: Stats, total: int, enabled: bool = True, desc: str = "generate"):
        self.stats = stats
        self.bar = None
        self._last = 0.0
        if enabled and total and not os.environ.get("GRADESET_NO_PROGRESS"):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, dynamic_ncols=True,
                            mininterval=0.5, smoothing=0.1)

    def advance(self, n: int = 1) -> None:
        if self.bar is None:
            return
        self.bar.update(n)
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            s = self.stats
            secs = max(1e-9, now - s.started)
            self.bar.set_postfix_str(
                f"{s.requests / secs:.1f} req/s, {s.completion_tokens / secs:.0f} tok/s, "
                f"{s.errors} errors, {s.failed} failed", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
