"""``balance`` as a partitioned program: per-prompt work in a map, caps decided on keys only.

Why it equals :class:`~gradeset.shape.balance.Balancer`: everything before the caps
(keep filter, per-prompt down/up-sampling, dropped buckets) depends on one group and
``hash(seed, id)`` only, so a map does it with the same code (a Balancer without caps per
block). The caps depend only on (task, bucket, priority = hash(seed, id) / 2**64, ORD, rows):

* bucket caps: the in-process bounded heap per (task, bucket) keeps the ``cap`` smallest
  priorities, and among equal priorities (rows sharing an id) which survive depends on
  arrival. Only rows whose priority is at most the cap-th smallest can survive, so each
  block sends those (priority, ORD) pairs per key (16 bytes each, about ``cap`` per key
  per block) through ``aggregate`` and the driver replays the heap in ORD order.
* task caps, row caps and bucket ratios need every held group of a task: thin rows
  (task, bucket, priority, ORD, rows: ~100 bytes) meet per task in a ``group_reduce``,
  which runs ``finish``'s rule (ratios, then the greedy task / row caps by priority).
* survivors: the held survivors' ORDs are broadcast (8 bytes each, a Python set ~60) and a
  map keeps them; groups no cap can touch never leave their block.

The pre-cap counts (groups_in, responses_downsampled, ...) come from an ``aggregate``
that runs the per-group work a second time (cheap next to a shuffle); groups_out and
rows_out are counted on the output. No row is shuffled: only keys move.
"""

from __future__ import annotations

import dataclasses
import heapq
from functools import partial
from typing import Any

from gradeset.distributed.executor import ORD, Executor, Rows
from gradeset.distributed.programs.common import KEY, key_on, ord_of, strip_fields
from gradeset.distributed.programs.sample import smallest_with_ties
from gradeset.records import bucket_of_flags, ensure_id
from gradeset.shape.balance import BalanceConfig, Balancer, _cap, ratio_caps, rows_of
from gradeset.shape.scoring import bump, is_correct, stable_rng_seed

TASK, BUCKET, PRIO, HELD = "_bt", "_bb", "_bp", "_bh"
MARKS = (TASK, BUCKET, PRIO, HELD)
OUT_STATS = ("groups_out", "rows_out")


def uncapped(cfg: BalanceConfig) -> BalanceConfig:
    return dataclasses.replace(cfg, bucket_caps={}, task_caps={}, task_row_caps={}, bucket_ratios={})


def bucket_and_task(cfg: BalanceConfig, g: dict) -> tuple[str, str]:
    """(task, bucket) as ``Balancer.add`` decides them, from the group before sampling."""
    thr = cfg.correct_threshold
    flags = [c if (c := r.get("correct")) is True or c is False else is_correct(r, thr)
             for r in g.get("responses") or ()]
    return g.get("task") or cfg.default_task, bucket_of_flags(flags)


def prepare(cfg: BalanceConfig, rows: Rows) -> Rows:
    """Per group: the uncapped balancer's output, marked with task, bucket, priority, held."""
    bal = Balancer(uncapped(cfg))
    out = []
    for r in rows:
        g = ensure_id(dict(r))
        task, b = bucket_and_task(cfg, g)
        for kept in bal.add(g):
            kept = dict(kept)
            held = cfg.capped and (_cap(cfg.bucket_caps, b) is not None or cfg.holds_all)
            kept.update({TASK: task, BUCKET: b, PRIO: stable_rng_seed(cfg.seed, g["id"]) / 2.0**64, HELD: held})
            out.append(kept)
    return out


def pre_stats(cfg: BalanceConfig, rows: Rows) -> dict[str, int]:
    bal = Balancer(uncapped(cfg))
    for r in rows:
        bal.add(ensure_id(dict(r)))
    return {k: v for k, v in bal.stats.items() if k not in OUT_STATS}


def add_stats(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


# -- bucket caps -----------------------------------------------------------------------
def cap_candidates(cfg: BalanceConfig, rows: Rows) -> dict:
    """(task, bucket) -> [count, (priority, ORD) pairs that may survive the bucket cap]."""
    per: dict[tuple[str, str], list] = {}
    for r in rows:
        cap = _cap(cfg.bucket_caps, r[BUCKET]) if r[HELD] else None
        if cap is None:
            continue
        cell = per.setdefault((r[TASK], r[BUCKET]), [0, []])
        cell[0] += 1
        if cap:
            cell[1].append((r[PRIO], ord_of(r)))
    return {k: [n, smallest_with_ties(_cap(cfg.bucket_caps, k[1]) or 0, c)] for k, (n, c) in per.items()}


def merge_candidates(cfg: BalanceConfig, a: dict, b: dict) -> dict:
    out = dict(a)
    for k, (n, c) in b.items():
        if k in out:
            out[k] = [out[k][0] + n, smallest_with_ties(_cap(cfg.bucket_caps, k[1]) or 0, out[k][1] + c)]
        else:
            out[k] = [n, c]
    return out


def replay_bucket(cap: int, candidates: list[tuple[float, int]]) -> set[int]:
    """``Balancer.add``'s bounded heap over the candidates in arrival (ORD) order."""
    heap: list[tuple[float, int]] = []
    for prio, o in sorted(candidates, key=lambda t: t[1]):
        if len(heap) < cap:
            heapq.heappush(heap, (-prio, o))
        elif -heap[0][0] > prio:
            heapq.heapreplace(heap, (-prio, o))
    return {o for _, o in heap}


# -- task caps and ratios ----------------------------------------------------------------
def task_items(cfg: BalanceConfig, handle: Any, resolve: Any, rows: Rows) -> Rows:
    """Thin rows of the held groups that passed their bucket caps."""
    passed = resolve(handle)
    out = []
    for r in rows:
        if not r[HELD]:
            continue
        cap = _cap(cfg.bucket_caps, r[BUCKET])
        if cap is not None and ord_of(r) not in passed:
            continue
        out.append({KEY: r[TASK], ORD: ord_of(r), BUCKET: r[BUCKET], PRIO: r[PRIO], "_r": rows_of(r)})
    return out


def finish_task(cfg: BalanceConfig, items: Rows) -> Rows:
    """``Balancer.finish`` for one task (items sorted by ORD): the survivors and the counts."""
    stats: dict[str, int] = {}
    by_bucket: dict[str, list] = {}
    for it in items:
        by_bucket.setdefault(it[BUCKET], []).append(it)
    if cfg.bucket_ratios:
        counts = {b: len(v) for b, v in by_bucket.items()}
        for b, cap in ratio_caps(counts, cfg.bucket_ratios).items():
            held = by_bucket.get(b)
            if held is None or len(held) <= cap:
                continue
            held.sort(key=lambda t: (t[PRIO], t[ORD]))
            bump(stats, "dropped_bucket_ratio", len(held) - cap)
            by_bucket[b] = held[:cap]
    task = items[0][KEY]
    gcap, rcap = _cap(cfg.task_caps, task), _cap(cfg.task_row_caps, task)
    groups = rows = 0
    out: Rows = []
    for it in sorted((t for v in by_bucket.values() for t in v), key=lambda t: (t[PRIO], t[ORD])):
        if gcap is not None and groups >= gcap:
            bump(stats, "dropped_task_cap")
            continue
        if rcap is not None and rows + it["_r"] > rcap:
            bump(stats, "dropped_row_cap")
            continue
        groups += 1
        rows += it["_r"]
        out.append({ORD: it[ORD]})
    return [*out, {"_stats": stats}]


def collect_survivors(rows: Rows) -> tuple[frozenset, dict]:
    stats: dict[str, int] = {}
    for r in rows:
        if "_stats" in r:
            stats = add_stats(stats, r["_stats"])
    return frozenset(r[ORD] for r in rows if "_stats" not in r), stats


def merge_survivors(a: tuple[frozenset, dict], b: tuple[frozenset, dict]) -> tuple[frozenset, dict]:
    return a[0] | b[0], add_stats(a[1], b[1])


# -- output -------------------------------------------------------------------------------
def keep_held(handle: Any, resolve: Any, rows: Rows) -> Rows:
    keep = resolve(handle)
    return strip_fields(MARKS, [r for r in rows if not r[HELD] or ord_of(r) in keep])


def out_stats(rows: Rows) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in rows:
        bump(out, "groups_out")
        bump(out, "rows_out", len(g.get("responses") or ()) or 1)
    return out


def run_balance(ex: Executor, ds: Any, cfg: BalanceConfig) -> tuple[Any, dict[str, int]]:
    stats = ex.aggregate(ds, partial(pre_stats, cfg), add_stats, {})
    prepped = ex.map_batches(ds, partial(prepare, cfg))
    keep: set[int] = set()
    if cfg.bucket_caps:
        cands = ex.aggregate(prepped, partial(cap_candidates, cfg), partial(merge_candidates, cfg), {})
        for k in sorted(cands):
            n, c = cands[k]
            kept = replay_bucket(_cap(cfg.bucket_caps, k[1]) or 0, c)
            if n - len(kept):
                bump(stats, "dropped_bucket_cap", n - len(kept))
            keep |= kept
    if cfg.holds_all:
        items = ex.map_batches(prepped, partial(task_items, cfg, ex.broadcast(frozenset(keep)), ex.resolve))
        done = ex.group_reduce(items, key_on(KEY), partial(finish_task, cfg))
        keep_set, task_stats = ex.aggregate(done, collect_survivors, merge_survivors, (frozenset(), {}))
        stats = add_stats(stats, task_stats)
    else:
        keep_set = frozenset(keep)
    out = ex.map_batches(prepped, partial(keep_held, ex.broadcast(keep_set), ex.resolve))
    return out, add_stats(stats, ex.aggregate(out, out_stats, add_stats, {}))
