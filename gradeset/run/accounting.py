"""Per-step counts and errors: what each step took in, gave out and counted on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradeset.errors import GradesetError


@dataclass
class StepCount:
    name: str
    kind: str  # map | stream
    n_in: int = 0
    n_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # responses / scored / correct in the step's output

    def add(self, other: dict) -> None:
        self.n_in += other.get("in", 0)
        self.n_out += other.get("out", 0)
        add_numbers(self.stats, other.get("stats"))
        add_numbers(self.rows, other.get("rows"))

    def as_dict(self) -> dict:
        return {"step": self.name, "kind": self.kind, "in": self.n_in, "out": self.n_out, "stats": self.stats,
                "rows": self.rows}


def add_numbers(into: dict, other: Any) -> dict:
    """Add other's numeric values into ``into`` key by key (counts from chunks or invocations)."""
    for k, v in _numeric(other).items():
        into[k] = into.get(k, 0) + v
    return into


def row_totals(rows: list[dict]) -> dict[str, int]:
    """What the report's stage table shows for a step's output: responses, scored, correct.

    Counted on the rows themselves, so generate and verify stages show real numbers
    instead of blanks, whatever each step chooses to put in its own ``stats``."""
    responses = scored = correct = 0
    for g in rows:
        rs = g.get("responses") if isinstance(g, dict) else None
        if not isinstance(rs, list):
            continue
        for r in rs:
            if not isinstance(r, dict):
                continue
            responses += 1
            if r.get("score") is not None:
                scored += 1
            if r.get("correct") is True:
                correct += 1
    return {"responses": responses, "scored": scored, "correct": correct}


def _numeric(stats: Any) -> dict[str, float]:
    if not isinstance(stats, dict):
        return {}
    return {k: v for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def stats_delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


class StepError(GradesetError):
    """A step raised while running: named by its place in the pipeline; finished shards stay."""


def step_error(i: int, step: Any, exc: BaseException, chunk: int | None = None) -> StepError:
    import traceback

    if isinstance(exc, StepError):
        return exc
    name = getattr(step, "_gradeset_name", None) or type(step).__name__
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    on = f" on chunk {chunk}" if chunk is not None else ""
    err = StepError(f"steps[{i}] {name} failed{on}: {type(exc).__name__}: {exc}{where}. Finished shards are "
                    "kept: fix the cause and re-run the same command to resume")
    if isinstance(exc, GradesetError):  # e.g. generate's 1 (some samples failed) vs 2 (nothing worked)
        err.exit_code = exc.exit_code
    return err


def apply_map_steps(steps: list[Any], indices: list[int], rows: list[dict], chunk: int | None = None
                    ) -> tuple[list[dict], dict]:
    """Run map steps in order on one chunk; returns rows and per-step {in, out, stats delta}."""
    counts: dict[str, dict] = {}
    for i in indices:
        step = steps[i]
        before = _numeric(getattr(step, "stats", None))
        n_in = len(rows)
        try:
            rows = list(step(rows)) if rows else rows
        except Exception as exc:
            raise step_error(i, step, exc, chunk) from exc
        counts[str(i)] = {"in": n_in, "out": len(rows), "rows": row_totals(rows),
                          "stats": stats_delta(before, _numeric(getattr(step, "stats", None)))}
    return rows, counts
