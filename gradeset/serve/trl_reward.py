"""A TRL reward function that grades on a running ``gradeset serve``.

TRL (>= 1.x) runs reward functions whose ``__call__`` is ``async`` on its own event loop,
concurrently with the other reward functions, so a remote grader does not hold the
training step while a local one computes. :class:`ServerReward` is such a function::

    from gradeset.serve.trl_reward import ServerReward
    trainer = GRPOTrainer(..., reward_funcs=[ServerReward("http://127.0.0.1:8000", task="math")])

The server must be serving the task. Scores follow :class:`gradeset.train.rewards.VerifierReward`:
0.0 for a wrong or unparsable answer, ``None`` (NaN to TRL, left out of the group baseline)
for a row without a gold answer or a grader timeout/error. When the server cannot be
reached, the batch is graded in this process with ``VerifierReward`` (``fallback=True``,
the default) instead of failing the step. ``.sync()`` gives a plain function for trainers
that do not await rewards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from gradeset.errors import GradesetError
from gradeset.serve.client import ServerRefused, ServerUnavailable, base_url, grade_remote, grade_remote_async
from gradeset.train.rewards import GOLDLESS, _column, _missing, completion_text

log = logging.getLogger("gradeset.serve")


class ServerReward:
    """``await reward(prompts=..., completions=..., answer=[...], task=[...])`` -> one score (or None) each."""

    def __init__(self, url: str | None = None, task: str | None = "math", *, name: str | None = None,
                 answer_field: str = "answer", task_field: str = "task", fallback: bool = True,
                 timeout: float = 300.0, local_timeout: float = 5.0):
        self.url = base_url(url)
        if self.url is None:
            raise GradesetError("ServerReward needs the server's URL (url= or $GRADESET_REWARD_URL)")
        self.task = task or "auto"
        self.answer_field = answer_field
        self.task_field = task_field
        self.fallback = fallback
        self.timeout = float(timeout)
        self.local_timeout = float(local_timeout)
        self.__name__ = name or f"{self.task}_correctness"
        self._local = None
        self.fallbacks = 0

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_local"] = None
        return state

    def _items(self, completions: Sequence[Any], kwargs: dict) -> tuple[list[dict], list[int], int]:
        n = len(completions)
        golds = _column(kwargs, self.answer_field, n)
        tasks = _column(kwargs, self.task_field, n) if self.task == "auto" else [self.task] * n
        items, where = [], []
        for i, (c, g, t) in enumerate(zip(completions, golds, tasks, strict=True)):
            task = t if isinstance(t, str) and t else None
            if (task or self.task) not in GOLDLESS and _missing(g):
                continue  # nothing to compare with: ungradable, not wrong
            item = {"completion": completion_text(c), "gold": g if not isinstance(g, bool) else str(g)}
            if task is not None:
                item["task"] = task
            items.append(item)
            where.append(i)
        return items, where, n

    @staticmethod
    def _scores(verdicts: list[dict], where: list[int], n: int) -> list[float | None]:
        out: list[float | None] = [None] * n
        for i, v in zip(where, verdicts, strict=True):
            detail = str(v.get("detail") or "")
            if detail.startswith(("timeout", "error")):
                continue  # a grader problem, not the model's: keep it out of the baseline
            out[i] = float(v.get("score") or 0.0)
        return out

    def _grade_here(self, prompts, completions, kwargs) -> list[float | None]:
        from gradeset.train.rewards import VerifierReward

        if self._local is None:
            self._local = VerifierReward(self.task, answer_field=self.answer_field, task_field=self.task_field,
                                         timeout=self.local_timeout)
        self.fallbacks += 1
        return self._local(prompts=prompts, completions=completions, **kwargs)

    async def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                       **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        items, where, n = self._items(completions, kwargs)
        if not items:
            return [None] * n
        try:
            return self._scores(await grade_remote_async(self.url, items, self.timeout), where, n)
        except (ServerRefused, ServerUnavailable) as exc:
            self._fall_back_or_raise(exc)
            return await asyncio.to_thread(self._grade_here, prompts, completions, kwargs)

    def _fall_back_or_raise(self, exc: Exception) -> None:
        """A refusal is the caller's error; an unreachable server is graded here when allowed."""
        if isinstance(exc, ServerRefused) or not self.fallback:
            raise GradesetError(str(exc)) from None
        log.warning("%s; grading this batch in the trainer's process", exc)

    def sync(self):
        """The same reward as a plain (blocking) function."""

        def reward(prompts=None, completions=None, **kwargs):
            completions = list(completions or [])
            items, where, n = self._items(completions, kwargs)
            if not items:
                return [None] * n
            try:
                return self._scores(grade_remote(self.url, items, self.timeout), where, n)
            except (ServerRefused, ServerUnavailable) as exc:
                self._fall_back_or_raise(exc)
                return self._grade_here(prompts, completions, kwargs)

        reward.__name__ = self.__name__
        return reward

    def close(self) -> None:
        if self._local is not None:
            with contextlib.suppress(Exception):
                self._local.close()
            self._local = None
