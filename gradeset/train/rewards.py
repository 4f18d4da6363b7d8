"""GRPO reward functions built from gradeset verifiers, in the shape TRL calls them.

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` where
every dataset column (``answer``, ``task``, ...) arrives as a list aligned with
``completions``, and expects one float per completion, or ``None`` when that completion
cannot be scored by this function (TRL turns it into NaN and leaves it out of the
group baseline). Completions are strings (standard datasets) or lists of messages
(conversational datasets); both are handled.

The verifier runs in gradeset's killable worker processes (``workers >= 1``), so a
completion like ``9^9^9^9`` cannot stall a training step: it times out and scores None.

Which completions are ungradable (None) and which are wrong (0.0):

- None: the row has no gold answer (for verifiers that need one), the verifier raised,
  or it timed out. These are grader problems and must not push the policy.
- 0.0: a wrong answer or no extractable answer. That is the model's fault and is what
  the reward exists to discourage.

A row's ``task`` column may only name a registered verifier (``math``, ``gsm8k``, ... or
one added with ``register_verifier``). A row naming anything else, ``builtins:exec``
included, scores None with a one-time warning and nothing is imported: the dataset is
untrusted input, only the caller chooses plugin code (``VerifierReward("python:m:f")``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any

from gradeset.errors import GradesetError

# verifiers that grade a completion by itself (no gold answer needed)
GOLDLESS = frozenset({"format", "regex"})


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or the assistant turns of a message list."""
    from gradeset.records import content_text, response_text

    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = [content_text(m.get("content")) for m in completion
                 if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(parts)
    return response_text(completion)


def _column(kwargs: dict[str, Any], name: str | None, n: int) -> list[Any]:
    if not name or name not in kwargs or kwargs[name] is None:
        return [None] * n
    col = kwargs[name]
    if isinstance(col, str | bytes) or not isinstance(col, Sequence):
        return [col] * n
    col = list(col)
    if len(col) != n:
        raise GradesetError(f"reward column {name!r} has {len(col)} values for {n} completions")
    return col


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class VerifierReward:
    """A TRL reward function that grades each completion with a gradeset verifier.

    task "auto" (or None) picks the verifier per row from the ``task`` column, falling
    back to ``default_task``. Picklable (state is names and options, the pool restarts).
    """

    def __init__(self, task: str | None = "auto", *, name: str | None = None, answer_field: str = "answer",
                 task_field: str = "task", default_task: str = "math", workers: int = 1, timeout: float = 5.0,
                 score: str = "score", needs_gold: bool | None = None, **opts: Any):
        self.task = task or "auto"
        self.answer_field = answer_field
        self.task_field = task_field
        self.default_task = default_task
        self.workers = int(workers)
        self.timeout = float(timeout)
        self.score = score
        self.opts = opts
        self.needs_gold = (self.task not in GOLDLESS) if needs_gold is None else needs_gold
        self.__name__ = name or (f"{self.task}_correctness" if self.task not in GOLDLESS else self.task)
        self._grader = None
        self._warned: set[str] = set()
        self.calls = 0    # completions seen / given a number: a run where scored stays 0 learnt nothing
        self.scored = 0
        if self.task != "auto":
            from gradeset.verify import get_verifier

            get_verifier(self.task, **opts)  # unknown names and bad options fail now, not mid-training

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_grader"] = None
        return state

    def _grader_for(self):
        if self._grader is None:
            from gradeset.verify import Grader

            self._grader = Grader(task=self.task, workers=self.workers, timeout=self.timeout,
                                  default_task=self.default_task, **self.opts)
        return self._grader

    def _allowed(self, task: str) -> bool:
        """Whether a row's task names a registered verifier; warns once per bad name."""
        from gradeset.verify.registry import UntrustedTask, data_task

        try:
            data_task(task, trusted={self.default_task})
        except UntrustedTask as exc:
            warned = self.__dict__.setdefault("_warned", set())
            if task not in warned and len(warned) < 20:
                warned.add(task)
                warnings.warn(f"reward {self.__name__}: rows scored None: {exc}", UserWarning, stacklevel=3)
            return False
        return True

    def close(self) -> None:
        if self._grader is not None:
            self._grader.close()
            self._grader = None

    def __del__(self):
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        if n == 0:
            return []
        out = self._score(completions, n, kwargs)
        self.calls += n
        self.scored += sum(1 for v in out if v is not None)
        return out

    def _score(self, completions: list, n: int, kwargs: dict[str, Any]) -> list[float | None]:
        golds = _column(kwargs, self.answer_field, n)
        tasks = _column(kwargs, self.task_field, n) if self.task == "auto" else [self.task] * n
        out: list[float | None] = [None] * n
        groups, where = [], []
        for i, (completion, gold, task) in enumerate(zip(completions, golds, tasks, strict=True)):
            if self.needs_gold and _missing(gold):
                continue  # nothing to compare with: ungradable, not wrong
            if self.task == "auto":
                task = task if isinstance(task, str) and task else self.default_task
                if not self._allowed(task):
                    continue  # a row naming code or an unknown verifier: ungradable, never imported
            groups.append({"task": task, "answer": gold,
                           "responses": [{"text": completion_text(completion)}]})
            where.append(i)
        if not groups:
            return out
        graded = self._grader_for().grade(groups)
        for i, g in zip(where, graded, strict=True):
            r = g["responses"][0]
            detail = str((r.get("meta") or {}).get("verify_detail") or "")
            if detail == "timeout" or detail.startswith("error"):
                continue
            value = r.get("correct") if self.score == "correct" else r.get("score")
            out[i] = None if value is None else float(value)
        return out


def parse_reward_spec(spec: str | None) -> list[tuple[str, float]]:
    """``"correctness=1.0,format=0.2"`` -> ``[("correctness", 1.0), ("format", 0.2)]``; a bare name weighs 1."""
    if not spec:
        return [("correctness", 1.0)]
    out: list[tuple[str, float]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.rpartition("=") if "=" in part else (part, "", "1")
        name = name.strip()
        try:
            w = float(weight)
        except ValueError as exc:
            raise GradesetError(f"--reward: weight of {name!r} must be a number, got {weight!r}") from exc
        if not name:
            raise GradesetError(f"--reward: missing a reward name in {part!r}")
        if any(name == seen for seen, _ in out):
            raise GradesetError(f"--reward: {name!r} is listed twice")
        out.append((name, w))
    if not out:
        raise GradesetError(f"--reward: no rewards in {spec!r}")
    return out


def build_rewards(spec: str | list[tuple[str, float]] | None, *, task: str | None = None, workers: int = 1,
                  timeout: float = 5.0, answer_field: str = "answer",
                  verifier_opts: dict[str, dict[str, Any]] | None = None) -> tuple[list[VerifierReward], list[float]]:
    """Reward functions and their weights (TRL's ``reward_weights``) from a spec.

    ``correctness`` is the verifier named by ``task`` (per-row ``task`` column when None);
    any other name is a verifier name (``format``, ``gsm8k``, ``python:pkg.mod:fn``, ...).
    """
    pairs = parse_reward_spec(spec) if not isinstance(spec, list) else spec
    verifier_opts = verifier_opts or {}
    funcs: list[VerifierReward] = []
    weights: list[float] = []
    for name, weight in pairs:
        verifier = (task or "auto") if name == "correctness" else name
        opts = dict(verifier_opts.get(name, {}))
        funcs.append(VerifierReward(verifier, name=name, workers=workers, timeout=timeout,
                                    answer_field=answer_field, **opts))
        weights.append(weight)
    return funcs, weights
