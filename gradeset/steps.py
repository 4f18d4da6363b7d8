"""The step interface and registry shared by every runner.

A step is built from plain, picklable parameters and called on a batch of groups::

    step = build_step("verify", {"task": "math", "timeout": 5})
    out_batch = step(batch)          # list[dict] -> list[dict]

Steps that need to see the whole stream (exact dedup, balance caps) implement
``process(batches: Iterator[list[dict]]) -> Iterator[list[dict]]`` instead of (or besides)
``__call__``; runners use ``process`` when present. A step never reads input files
given by the pipeline's source, never prints and never imports a runner: counts go in
``step.stats`` (a dict of name -> int) which the runner reports.

The registry maps a name to ``"module:factory"`` and imports lazily, so listing steps
does not import torch, vLLM or Ray.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from gradeset.errors import GradesetError


@runtime_checkable
class Step(Protocol):
    def __call__(self, batch: list[dict]) -> list[dict]: ...


@runtime_checkable
class StreamStep(Protocol):
    def process(self, batches: Iterator[list[dict]]) -> Iterator[list[dict]]: ...


STEPS: dict[str, str] = {
    # name: "module:factory"; factory(**params) -> Step
    "generate": "gradeset.generate.step:GenerateStep",
    "verify": "gradeset.verify.step:VerifyStep",
    "dedup": "gradeset.shape.dedup:DedupStep",
    "decontaminate": "gradeset.shape.decontaminate:DecontaminateStep",
    "balance": "gradeset.shape.balance:BalanceStep",
    "filter": "gradeset.shape.select:FilterStep",
    "sample": "gradeset.shape.select:SampleStep",
    "check": "gradeset.check.step:CheckStep",
    "arithmetic_variants": "gradeset.sources.augment:ArithmeticVariantsStep",
    "paraphrase": "gradeset.sources.augment:ParaphraseStep",
}


def register_step(name: str, target: str) -> None:
    """Add a step (also for user plugins: ``register_step("mine", "pkg.mod:MyStep")``)."""
    STEPS[name] = target


def resolve(target: str, what: str = "step") -> Callable[..., Any]:
    """The object a ``"module:attribute"`` target names (steps, verifier plugins)."""
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise GradesetError(f"cannot import {module} for {what} {target!r}: {exc}") from exc
    try:
        return getattr(mod, attr)
    except AttributeError as exc:
        raise GradesetError(f"module {module!r} has no {attr!r}") from exc


def build_step(name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered step (or a ``module:factory`` target) from parameters."""
    target = STEPS.get(name, name if ":" in name else None)
    if target is None:
        raise GradesetError(f"unknown step {name!r}; known: {', '.join(sorted(STEPS))}")
    factory = resolve(target)
    try:
        return factory(**(params or {}))
    except TypeError as exc:
        raise GradesetError(f"step {name!r}: bad parameters {sorted(params or {})}: {exc}") from exc


def run_steps_on_batch(steps: list[Any], batch: list[dict]) -> list[dict]:
    """Apply map-style steps in order (what a Ray ``map_batches`` worker does)."""
    for step in steps:
        batch = step(batch)
        if not batch:
            break
    return batch
