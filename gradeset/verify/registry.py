"""Verifier names -> factories, imported lazily; ``python:module:function`` plugins.

Trust boundary: a ``module:function`` target imports and runs code, so only the user may
name one (a command-line flag, the pipeline YAML, a Python call to ``get_verifier`` or
``register_verifier``). A name that comes from the data, a row's ``task`` field, goes
through ``data_task`` first, which accepts registered names only: a downloaded dataset
whose rows say ``builtins:exec`` must not run ``exec`` on the user's machine.
"""

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
    """Add a verifier: ``register_verifier("mine", "pkg.mod:MyVerifier")`` (a factory taking the
    options) or ``register_verifier("mine", "python:pkg.mod:grade")`` (a ``fn(completion, gold)``).

    The user's call: once registered, rows may name ``"mine"`` in their ``task`` field."""
    if not isinstance(name, str) or not name or ":" in name:
        raise GradesetError(f"verifier name {name!r}: expected a plain name without ':'")
    if ":" not in target.removeprefix("python:"):
        raise GradesetError(f"verifier {name!r}: target {target!r} should read module:function")
    VERIFIERS[name] = target


class UntrustedTask(GradesetError):
    """A data row named a verifier that is not registered (or a code target)."""


def is_code_target(name: str) -> bool:
    """True when name would import code (``python:m:f`` or ``m:f``) rather than name a verifier."""
    return ":" in name


def data_task(task: object, trusted: frozenset[str] | set[str] = frozenset()) -> str:
    """The registered verifier a row's ``task`` field names, or UntrustedTask with the reason.

    ``trusted`` holds the names the user gave for this run (``--task``, a default), which a
    row may repeat. Nothing here imports anything.
    """
    if not isinstance(task, str) or not task.strip():
        raise UntrustedTask(f"task {task!r}: expected a verifier name")
    if task in trusted:
        return task
    name = canonical_task(task)
    if name in VERIFIERS:
        return name
    if name.lower() in VERIFIERS:
        return name.lower()
    shown = task if len(task) <= 80 else task[:77] + "..."
    if is_code_target(task):
        raise UntrustedTask(
            f"task {shown!r} from the data names code to import; a row may only name a registered "
            f"verifier ({', '.join(known())}); choose a plugin yourself with --task or register_verifier")
    raise UntrustedTask(f"task {shown!r}: unknown verifier; known: {', '.join(known())}")


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
    if target.startswith("python:"):
        return None
    factory = _import(target)
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def get_verifier(task: str, **opts: Any) -> Callable:
    """A picklable ``(completion, gold) -> Verdict`` for task (a name or ``python:module:function``).

    Imports whatever target task names, so task must come from the user, never from a data
    row (pass row tasks through ``data_task``).

    Calling the returned verifier grades in-process with **no time limit**: extraction is
    linear in the completion, but the symbolic fallback and plugins are not bounded. For
    untrusted text use the worker pool (``gradeset.verify.verify_groups(..., workers=N,
    timeout=S)`` / ``gradeset verify --timeout``), which kills a stuck worker.
    """
    if not isinstance(task, str) or not task:
        raise GradesetError(f"verifier name {task!r}: expected a string")
    if task.startswith("python:"):
        return PluginVerifier(task[len("python:"):], **opts)
    if ":" in task and task.split(":", 1)[0] not in VERIFIERS:
        return PluginVerifier(task, **opts)
    task = canonical_task(task)
    target = VERIFIERS.get(task)
    if target is None:
        raise GradesetError(f"unknown verifier {task!r}; known: {', '.join(known())}, or python:module:function")
    if target.startswith("python:"):  # registered by the user as a plain function
        return PluginVerifier(target[len("python:"):], **opts)
    factory = _import(target)
    try:
        return factory(**opts)
    except TypeError as exc:
        ok = accepted_options(task)
        raise GradesetError(f"verifier {task!r}: bad options {sorted(opts)}"
                            + (f"; it accepts {sorted(ok)}" if ok else "") + f" ({exc})") from exc
