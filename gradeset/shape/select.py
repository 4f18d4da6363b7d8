"""Filter and sample steps for pipelines.

``FilterStep`` keeps groups by pass-rate band, bucket, task, difficulty or number of
responses. ``SampleStep`` keeps a reproducible subset: a ``fraction`` decided per
group by a hash of (seed, id) (stateless, so it works per batch and under Ray), or
exactly ``n`` groups (the n smallest hashes, which needs the whole stream).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence

from gradeset.errors import GradesetError
from gradeset.records import ensure_id, pass_rate
from gradeset.shape.balance import BUCKETS, bucket_of
from gradeset.shape.scoring import ShapeError, bump, stable_unit


def _as_set(v: Sequence[str] | str | None) -> frozenset[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = [x.strip() for x in v.split(",") if x.strip()]
    return frozenset(v)


class FilterStep:
    def __init__(self, min_pass_rate: float | None = None, max_pass_rate: float | None = None,
                 buckets: Sequence[str] | str | None = None, tasks: Sequence[str] | str | None = None,
                 difficulties: Sequence[str] | str | None = None, min_responses: int | None = None,
                 graded_only: bool = False, correct_threshold: float = 1.0):
        self.min_pass_rate, self.max_pass_rate = min_pass_rate, max_pass_rate
        self.buckets, self.tasks, self.difficulties = _as_set(buckets), _as_set(tasks), _as_set(difficulties)
        for b in self.buckets or ():
            if b not in BUCKETS:
                raise ShapeError(f"unknown bucket {b!r}; buckets are {', '.join(BUCKETS)}")
        self.min_responses, self.graded_only = min_responses, graded_only
        self.correct_threshold = correct_threshold
        self.stats: dict[str, int] = {}

    def reason(self, g: dict) -> str | None:
        """Why a group is dropped, or None to keep it."""
        if self.tasks is not None and g.get("task") not in self.tasks:
            return "task"
        if self.difficulties is not None and g.get("difficulty") not in self.difficulties:
            return "difficulty"
        if self.min_responses is not None and len(g.get("responses") or []) < self.min_responses:
            return "too-few-responses"
        b = bucket_of(g, self.correct_threshold)
        if self.graded_only and b == "ungraded":
            return "ungraded"
        if self.buckets is not None and b not in self.buckets:
            return "bucket"
        if self.min_pass_rate is not None or self.max_pass_rate is not None:
            rate = pass_rate(g)
            if rate is None:
                return "ungraded"
            if self.min_pass_rate is not None and rate < self.min_pass_rate:
                return "below-pass-rate"
            if self.max_pass_rate is not None and rate > self.max_pass_rate:
                return "above-pass-rate"
        return None

    def __call__(self, batch: list[dict]) -> list[dict]:
        out = []
        for g in batch:
            why = self.reason(g)
            if why is None:
                bump(self.stats, "kept")
                out.append(g)
            else:
                bump(self.stats, f"dropped_{why}")
        return out


class SampleStep:
    def __init__(self, n: int | None = None, fraction: float | None = None, seed: int = 0):
        if (n is None) == (fraction is None):
            raise ShapeError("sample takes exactly one of n or fraction")
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ShapeError(f"fraction must be in [0, 1], got {fraction}")
        if n is not None and n < 0:
            raise ShapeError(f"n must be >= 0, got {n}")
        self.n, self.fraction, self.seed = n, fraction, seed
        self.stats: dict[str, int] = {}

    def __call__(self, batch: list[dict]) -> list[dict]:
        if self.fraction is None:
            raise GradesetError("sample n=... needs the whole stream: runners must call process()")
        out = [g for g in batch if stable_unit(self.seed, ensure_id(g)["id"]) < self.fraction]
        bump(self.stats, "kept", len(out))
        bump(self.stats, "dropped", len(batch) - len(out))
        return out

    def process(self, batches: Iterable[list[dict]]) -> Iterator[list[dict]]:
        if self.fraction is not None:
            for batch in batches:
                out = self(batch)
                if out:
                    yield out
            return
        heap: list[tuple[float, int, dict]] = []
        i = 0
        for batch in batches:
            for g in batch:
                i += 1
                key = -stable_unit(self.seed, ensure_id(g)["id"])
                if len(heap) < self.n:
                    heapq.heappush(heap, (key, i, g))
                elif self.n and key > heap[0][0]:
                    heapq.heapreplace(heap, (key, i, g))
        kept = [g for _, _, g in sorted(heap, key=lambda t: t[1])]
        bump(self.stats, "kept", len(kept))
        bump(self.stats, "dropped", i - len(kept))
        for j in range(0, len(kept), 1024):
            yield kept[j:j + 1024]
