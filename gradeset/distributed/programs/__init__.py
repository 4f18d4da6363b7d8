"""Whole-stream steps as partitioned programs on an :class:`~gradeset.distributed.executor.Executor`.

``program_for(step)`` says whether a built step has a partitioned form;
``run_partitioned(step, ex, ds)`` runs it and returns ``(rows, stats, report)``: the
output dataset (the same set of rows, with the same fields, as ``step.process``), the
stats dict ``step.process`` leaves in ``step.stats`` (equal keys and values), and for
``check`` the :class:`~gradeset.check.checks.CheckReport` (else None). Rows must carry
:data:`~gradeset.distributed.executor.ORD`; "first occurrence" means smallest ORD.

Per-program algorithms and costs are in each module's docstring (``exact``, ``near``,
``balance``, ``sample``, ``check``). The step's own stats (and for check its report) are
also set on the step, so a runner can read them as after ``process``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradeset.distributed.executor import Executor

Program = Callable[[Any, Executor, Any], tuple[Any, dict, Any]]


def _dedup(step: Any, ex: Executor, ds: Any) -> tuple[Any, dict, Any]:
    params = step.params
    if params["method"] == "exact":
        from gradeset.distributed.programs.exact import run_exact

        out, stats = run_exact(ex, ds, params)
    else:
        from gradeset.distributed.programs.near import run_near_dedup

        out, stats = run_near_dedup(ex, ds, params)
    return out, stats, None


def _sample(step: Any, ex: Executor, ds: Any) -> tuple[Any, dict, Any]:
    from gradeset.distributed.programs.sample import run_sample

    out, stats = run_sample(ex, ds, step.n, step.fraction, step.seed)
    return out, stats, None


def _balance(step: Any, ex: Executor, ds: Any) -> tuple[Any, dict, Any]:
    from gradeset.distributed.programs.balance import run_balance

    out, stats = run_balance(ex, ds, step.config)
    return out, stats, None


def _check(step: Any, ex: Executor, ds: Any) -> tuple[Any, dict, Any]:
    from gradeset.distributed.programs.check import run_check

    report, stats = run_check(ex, ds, step.params)
    step._report = report
    return ds, stats, report


_PROGRAMS: dict[str, Program] = {
    "DedupStep": _dedup, "SampleStep": _sample, "BalanceStep": _balance, "CheckStep": _check,
}


def program_for(step: Any) -> Program | None:
    """The partitioned program for a built step, or None (map steps and unknown steps)."""
    if type(step).__module__.startswith("gradeset.") and hasattr(step, "process"):
        return _PROGRAMS.get(type(step).__name__)
    return None


def run_partitioned(step: Any, ex: Executor, ds: Any) -> tuple[Any, dict, Any | None]:
    """Run ``step`` as a partitioned program: (output dataset, stats, CheckReport or None)."""
    program = program_for(step)
    if program is None:
        raise ValueError(f"{type(step).__name__} has no partitioned program")
    out, stats, report = program(step, ex, ds)
    step.stats = dict(stats)
    return out, stats, report


__all__ = ["program_for", "run_partitioned"]
