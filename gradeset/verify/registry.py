"""Verifier names -> factories, imported lazily; ``python:module:function`` plugins."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gradeset.errors import GradesetError
from gradeset.steps import resolve

VERIFIERS: dict[str, str] = {
    "math": "gradeset.verify.maths:MathVerifier",
    "gsm8k": "gradeset.verify.gsm8k:GSM8KVerifier",
    "mcq": "gradeset.verify.mcq:MCQVerifier",
    "gpqa": "gradeset.verify.mcq:MCQVerifier",
    "trivia": "gradeset.verify.trivia:TriviaVerifier",
    "format": "gradeset.verify.format:FormatVerifier",
    "regex": "gradeset.verify.format:RegexVerifier",
    "code": "gradeset.verify.code:CodeVerifier",
    "judge": "gradeset.verify.judge:JudgeVerifier",
}


# Task names datasets and other tools use for the same families.
ALIASES = {
    "mmlu": "mcq", "mmlu_pro": "mcq", "mmlu-pro": "mcq", "multiple_choice": "mcq", "choice": "mcq",
    "triviaqa": "trivia", "trivia_qa": "trivia", "qa": "trivia",
    "gsm": "gsm8k", "python": "code", "coding": "code", "llm_judge": "judge", "rubric": "judge",
    "maths": "math", "mathematics": "math",
}


def canonical_task(task: str) -> str:
    return ALIASES.get(task.lower(), task) if isinstance(task, str) else task


def register_verifier(name: str, target: str) -> None:
    """Add a verifier: ``register_verifier("mine", "pkg.mod:MyVerifier")``."""
    VERIFIERS[name] = target


def _import(target: str) -> Any:
    return resolve(target, "verifier")


class PluginVerifier:
    """A user function ``fn(completion, gold)`` named as ``python:pkg.module:function``.

    Kept as a name, not a function object, so it pickles into worker processes.
    """

    def __init__(self, target: str, **opts: Any):
        self.target = target
        self.opts = opts
        fn = _import(target)
        if not callable(fn):
            raise GradesetError(f"{target} is not callable")

    def __getstate__(self):
        return {"target": self.target, "opts": self.opts}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __call__(self, completion: str, gold: Any):
        from gradeset.verify.pool import coerce

        fn = self.__dict__.get("_fn")
        if fn is None:
            fn = self._fn = _import(self.target)
        out = fn(completion, gold, **self.opts)
        return coerce(out) if not hasattr(out, "correct") else out


def known() -> list[str]:
    return sorted(VERIFIERS)


def accepted_options(task: str) -> set[str] | None:
    """Keyword options the verifier takes (None when it takes any)."""
    if task.startswith("python:"):
        return None
    target = VERIFIERS.get(canonical_task(task))
    if target is None:
        return set()
    factory = _import(target)
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def get_verifier(task: str, **opts: Any) -> Callable:
    """A picklable ``(completion, gold) -> Verdict`` for task (a name or ``python:module:function``).

    Calling the returned verifier grades in-process with **no time limit**: extraction is
    linear in the completion, but the symbolic fallback and plugins are not bounded. For
    untrusted text use the worker pool (``gradeset.verify.verify_groups(..., workers=N,
    timeout=S)`` / ``gradeset verify --timeout``), which kills a stuck worker.
    """
    if task.startswith("python:"):
        return PluginVerifier(task[len("python:"):], **opts)
    if ":" in task and task.split(":", 1)[0] not in VERIFIERS:
        return PluginVerifier(task, **opts)
    task = canonical_task(task)
    target = VERIFIERS.get(task)
    if target is None:
        raise GradesetError(f"unknown verifier {task!r}; known: {', '.join(known())}, or python:module:function")
    factory = _import(target)
    try:
        return factory(**opts)
    except TypeError as exc:
        ok = accepted_options(task)
        raise GradesetError(f"verifier {task!r}: bad options {sorted(opts)}"
                            + (f"; it accepts {sorted(ok)}" if ok else "") + f" ({exc})") from exc
