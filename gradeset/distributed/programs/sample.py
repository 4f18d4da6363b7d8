"""``sample``: ``fraction`` is a plain map; ``n`` keeps the in-process heap's exact survivors.

Why the driver replays a heap: :class:`~gradeset.shape.select.SampleStep` keeps the n
smallest ``stable_unit(seed, id)`` values with a bounded heap, and among rows with equal
values (rows sharing an id) which ones survive depends on arrival order. Every row whose
value is at most the n-th smallest (ties included) is the only input that heap ever
keeps, and replaying the heap over exactly those, in ORD order, gives its result (rows
with larger values only fill slots that later rows take). So blocks send their n smallest
(value, ORD) pairs plus ties (16 bytes each, about n per block), the driver merges them,
replays the heap, and broadcasts the surviving ORD set (8 bytes per kept row, on every
worker) for a filtering map. No shuffle; the rows never leave their workers.
"""

from __future__ import annotations

import heapq
from functools import partial
from typing import Any

from gradeset.distributed.executor import Executor, Rows
from gradeset.distributed.programs.common import count_rows, ord_of
from gradeset.records import ensure_id
from gradeset.shape.scoring import stable_unit


def with_ids(rows: Rows) -> Rows:
    return [ensure_id(dict(r)) for r in rows]


def keep_fraction(seed: Any, fraction: float, rows: Rows) -> Rows:
    return [r for r in with_ids(rows) if stable_unit(seed, r["id"]) < fraction]


def smallest_with_ties(n: int, items: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The items whose value is at most the n-th smallest value (all ties of it kept)."""
    if n <= 0 or not items:
        return []
    if len(items) <= n:
        return items
    cut = heapq.nsmallest(n, items)[-1][0]
    return [t for t in items if t[0] <= cut]


def block_candidates(seed: Any, n: int, rows: Rows) -> tuple[int, list[tuple[float, int]]]:
    items = [(stable_unit(seed, ensure_id(dict(r))["id"]), ord_of(r)) for r in rows]
    return len(rows), smallest_with_ties(n, items)


def merge_candidates(n: int, a: tuple[int, list], b: tuple[int, list]) -> tuple[int, list]:
    return a[0] + b[0], smallest_with_ties(n, a[1] + b[1])


def replay_heap(n: int, candidates: list[tuple[float, int]]) -> set[int]:
    """``SampleStep.process``'s heap over the candidates in ORD order: the kept ORDs."""
    heap: list[tuple[float, int]] = []
    for value, o in sorted(candidates, key=lambda t: t[1]):
        key = -value
        if len(heap) < n:
            heapq.heappush(heap, (key, o))
        elif n and key > heap[0][0]:
            heapq.heapreplace(heap, (key, o))
    return {o for _, o in heap}


def keep_ords(ex_handle: Any, resolve: Any, rows: Rows) -> Rows:
    keep = resolve(ex_handle)
    return [r for r in with_ids(rows) if ord_of(r) in keep]


def run_sample(ex: Executor, ds: Any, n: int | None, fraction: float | None, seed: Any) -> tuple[Any, dict]:
    if fraction is not None:
        total = ex.aggregate(ds, count_rows, _add, 0)
        out = ex.map_batches(ds, partial(keep_fraction, seed, fraction))
        kept = ex.aggregate(out, count_rows, _add, 0)
        return out, ({"kept": kept, "dropped": total - kept} if total else {})
    assert n is not None
    total, cands = ex.aggregate(ds, partial(block_candidates, seed, n), partial(merge_candidates, n), (0, []))
    keep = replay_heap(n, cands)
    out = ex.map_batches(ds, partial(keep_ords, ex.broadcast(frozenset(keep)), ex.resolve))
    return out, {"kept": len(keep), "dropped": total - len(keep)}


def _add(a: int, b: int) -> int:
    return a + b
