"""The ``verify`` pipeline step: grade each batch with a long-lived pool of workers."""

from __future__ import annotations

import contextlib
from typing import Any

from gradeset.verify.groups import STAT_KEYS, Grader


class VerifyStep:
    """``VerifyStep(task="math", workers=2, timeout=5)(batch) -> batch`` with counts in ``stats``."""

    def __init__(self, task: str = "math", workers: int = 1, timeout: float = 5.0, **opts: Any):
        from gradeset.verify.registry import canonical_task

        if canonical_task(task) not in ("code", "auto"):
            opts.pop("unsafe_no_sandbox", None)  # only the code verifier runs programs
        self.params = {"task": task, "workers": workers, "timeout": timeout, **opts}
        self._grader: Grader | None = None
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)

    def __getstate__(self):
        return {"params": self.params, "_grader": None, "stats": dict(self.stats)}

    def validate(self) -> None:
        """Build the verifier now, so a misspelt task or option fails before any generation.

        Runners call this up front (``gradeset run --check-only`` too); with ``task: auto``
        the rows name the tasks, so only the options can be checked then."""
        grader = Grader(**self.params)
        if grader.task != "auto":
            grader.verifier(grader.task)

    def __call__(self, batch: list[dict]) -> list[dict]:
        if self._grader is None:
            self._grader = Grader(**self.params)
            self._grader.stats = self.stats
        return self._grader.grade(batch)

    def close(self) -> None:
        if self._grader is not None:
            self._grader.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()
