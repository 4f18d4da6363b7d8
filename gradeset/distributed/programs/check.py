"""``check`` as mergeable partial aggregates: the report equals one in-process pass.

Why each piece is exact:

* **line numbers.** The in-process step numbers groups 1, 2, ... as they arrive, and
  examples and the sample cite them. Rows are bucketed by ``ORD // 65536``; an
  ``aggregate`` of per-bucket (count, min, max ORD) (three ints per 65536 rows) gives each
  bucket's offset. When no bucket has a gap (nothing was dropped upstream) a map numbers
  rows; otherwise a ``group_reduce`` on the bucket numbers them sorted by ORD (one row
  shuffle).
* **counters, histograms, tallies.** Each block runs a real :class:`CheckRunner` over its
  rows in line order (``partial`` stats, duplicate checks off); runners merge by adding
  counters and keeping the first ``examples`` failing rows by line (a tally's first N is
  mergeable). Order-dependent pieces are made order-free: the longest-text heap ranks by
  (length, line, position), the report sample is the smallest hash of (seed, id, line)
  per bucket, and top-N / 200-value capped tables are cut by first-seen line when merged.
* **duplicates.** ``group_reduce`` on the duplicate key: the head (smallest line) is the
  first occurrence, the rest are hits citing it.
* **near duplicates.** The first row of each distinct prompt (a ``group_reduce`` on the
  prompt hash, which also counts distinct prompts) goes through the near-dedup edges
  program (``near.py``) with the check's MinHash settings and number guard.

Approximate: only float sums (token usage per response share, ``meta.cost``) may differ
in the last bits, since addition order differs; the report rounds them.

Costs per row: one shuffle of the row (line numbers), a thin ~100-byte row shuffled for
duplicates and one for distinct prompts, and the near-dup bands for distinct prompts.
The driver receives per-block partial states: counters bounded by distinct lengths /
slice values, plus ``examples`` and ``sample`` rows per block.
"""

from __future__ import annotations

import heapq
from functools import lru_cache, partial
from typing import Any

from gradeset.check.checks import Example, _Tally
from gradeset.distributed.executor import ORD, Executor, Rows
from gradeset.distributed.programs.common import KEY, count_rows, key_on, ord_of
from gradeset.distributed.programs.near import GUARD, TEXT, near_drops
from gradeset.records import group_id, prompt_text, response_text, validate_group
from gradeset.shape.dedup import numbers_guard
from gradeset.shape.text import normalize, text_hash

LINE = "_line"
SPAN = 1 << 16
TICK = 1 << 32  # the longest-text heap's order: line, then position in the row


@lru_cache(maxsize=4)
def _length_counter(tokenizer: str | None):
    from gradeset.check.api import length_counter

    return length_counter(tokenizer)


def build_runner(params: dict, partial_state: bool = False):
    """The runner ``CheckStep(**params)`` builds (a block's runner counts partials)."""
    from gradeset.check.checks import CheckRunner
    from gradeset.check.config import CheckConfig

    options = {k: v for k, v in params.items() if k not in ("layout", "tokenizer", "test_prompts", "source")}
    config = CheckConfig.from_dict(options)
    if partial_state:
        config.disable = [*config.disable, "duplicates", "near_duplicates"]
    length_fn, unit = _length_counter(params.get("tokenizer"))
    runner = CheckRunner(config, layout=params.get("layout"), length_fn=length_fn, unit=unit,
                         test_prompts=params.get("test_prompts"), source=params.get("source") or "stage")
    if partial_state:
        runner.stats.partial = True
    return runner


# -- line numbers ---------------------------------------------------------------------
def span_counts(span: int, rows: Rows) -> dict[int, tuple[int, int, int]]:
    """span -> (rows, smallest ORD, largest ORD)."""
    out: dict[int, tuple[int, int, int]] = {}
    for r in rows:
        o = ord_of(r)
        n, lo, hi = out.get(o // span, (0, o, o))
        out[o // span] = (n + 1, min(lo, o), max(hi, o))
    return out


def merge_counts(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, (n, lo, hi) in b.items():
        m, lo2, hi2 = out.get(k, (0, lo, hi))
        out[k] = (m + n, min(lo, lo2), max(hi, hi2))
    return out


def number_dense(span: int, handle: Any, resolve: Any, rows: Rows) -> Rows:
    """Every span holds consecutive ORDs (nothing dropped upstream): a line is arithmetic."""
    starts = resolve(handle)
    out = []
    for r in rows:
        o = ord_of(r)
        start, lo = starts[o // span]
        out.append(dict(r, **{LINE: start + o - lo + 1}))
    return out


def span_key(span: int, row: dict) -> str:
    return str(ord_of(row) // span)


def number_span(span: int, handle: Any, resolve: Any, group: Rows) -> Rows:
    start = resolve(handle)[ord_of(group[0]) // span][0]
    return [dict(r, **{LINE: start + i + 1}) for i, r in enumerate(group)]


# -- per-block runner state -------------------------------------------------------------
class RunnerPartial:
    """The mergeable state of a block's runner (no functions, no indexes: picklable)."""

    COUNTS = ("groups", "invalid", "responses", "scored", "variance_groups", "pairs", "labelled", "desirable")

    def __init__(self, runner: Any = None):
        self.empty = runner is None
        if runner is None:
            return
        for name in self.COUNTS:
            setattr(self, name, getattr(runner, name))
        self.t = runner.t
        self.score_missing = runner.score_missing
        self.sizes_seen = runner.sizes_seen
        self.long = runner._long
        runner.stats.length_fn = None
        self.stats = runner.stats

    def merge(self, other: RunnerPartial) -> RunnerPartial:
        if other.empty:
            return self
        if self.empty:
            return other
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, tally in other.t.items():
            self.t[name] = merge_tallies(self.t[name], tally)
        self.score_missing = merge_tallies(self.score_missing, other.score_missing)
        for k, v in other.sizes_seen.items():
            self.sizes_seen[k] = self.sizes_seen.get(k, 0) + v
        limit = self.score_missing.limit
        self.long = heapq.nlargest(limit, self.long + other.long)
        heapq.heapify(self.long)
        self.stats.merge(other.stats)
        return self


def merge_tallies(a: _Tally, b: _Tally) -> _Tally:
    out = _Tally(a.limit)
    out.count = a.count + b.count
    out.examples = list(heapq.merge(a.examples, b.examples, key=lambda e: e.line or 0))[:a.limit]
    return out


def block_partial(params: dict, rows: Rows) -> RunnerPartial:
    runner = build_runner(params, partial_state=True)
    for r in sorted(rows, key=lambda r: r[LINE]):
        line = r[LINE]
        runner._tick = line * TICK
        runner.add({k: v for k, v in r.items() if k not in (LINE, ORD)}, line)
    return RunnerPartial(runner)


def merge_partials(a: RunnerPartial, b: RunnerPartial) -> RunnerPartial:
    return a.merge(b)


# -- duplicates and distinct prompts --------------------------------------------------
def prompt_keys(mode: str, rows: Rows) -> Rows:
    """Thin rows for valid groups with a prompt: line, id, duplicate key, prompt hash."""
    out = []
    for r in rows:
        g = {k: v for k, v in r.items() if k not in (LINE, ORD)}
        if validate_group(g):
            continue
        ptext = prompt_text(g.get("prompt"))
        if not ptext.strip():
            continue
        gid = g.get("id") or group_id(g.get("prompt"), g.get("answer"), g.get("source"))
        norm = normalize(ptext)
        phash = text_hash(norm)
        key = phash if mode == "groups" else text_hash("\x1f".join(
            [norm, *(normalize(response_text(x)) for x in g.get("responses") or [])]))
        out.append({ORD: r[LINE], "_id": gid, "_dk": key.hex(), "_ph": phash.hex(), TEXT: norm})
    return out


def duplicate_hits(group: Rows) -> Rows:
    first = group[0]
    return [{ORD: r[ORD], "_id": r["_id"], "_d": f"same prompt as line {first[ORD]} (id {first['_id']})"}
            for r in group[1:]]


def first_of_prompt(group: Rows) -> Rows:
    head = group[0]
    return [{ORD: head[ORD], "_id": head["_id"], TEXT: head[TEXT], GUARD: numbers_guard(head[TEXT])}]


def hits_partial(limit: int, rows: Rows) -> tuple[int, list]:
    return len(rows), heapq.nsmallest(limit, [(r[ORD], r["_id"], r["_d"]) for r in rows])


def merge_hits(limit: int, a: tuple[int, list], b: tuple[int, list]) -> tuple[int, list]:
    return a[0] + b[0], heapq.nsmallest(limit, a[1] + b[1])


def ids_of(handle: Any, resolve: Any, rows: Rows) -> dict[int, Any]:
    want = resolve(handle)
    return {r[ORD]: r["_id"] for r in rows if r[ORD] in want}


def merge_dicts(a: dict, b: dict) -> dict:
    return {**a, **b}


def tally_of(limit: int, count: int, examples: list[tuple[int, Any, str]]) -> _Tally:
    t = _Tally(limit)
    t.count = count
    t.examples = [Example(gid, line, detail[:300], None) for line, gid, detail in examples[:limit]]
    return t


def _add(a: int, b: int) -> int:
    return a + b


# -- the program ---------------------------------------------------------------------
def run_check(ex: Executor, ds: Any, params: dict) -> tuple[Any, dict[str, int]]:
    """(CheckReport, the step's stats) for the rows of ``ds``; ``ds`` itself passes through."""
    final = build_runner(params)
    cfg, limit = final.config, final.config.examples
    span = SPAN  # read at call time: tests shrink it so a few rows make many spans
    spans = ex.aggregate(ds, partial(span_counts, span), merge_counts, {})
    starts, at = {}, 0
    for s in sorted(spans):
        n, lo, hi = spans[s]
        starts[s], at = (at, lo), at + n
    handle = ex.broadcast(starts)
    if all(n == hi - lo + 1 for n, lo, hi in spans.values()):  # ORDs are unique: no gaps, no shuffle
        lined = ex.map_batches(ds, partial(number_dense, span, handle, ex.resolve))
    else:
        lined = ex.group_reduce(ds, partial(span_key, span), partial(number_span, span, handle, ex.resolve))

    state = ex.aggregate(lined, partial(block_partial, params), merge_partials, RunnerPartial())
    if not state.empty:
        for name in RunnerPartial.COUNTS:
            setattr(final, name, getattr(state, name))
        final.t.update(state.t)
        final.score_missing, final.sizes_seen, final._long = state.score_missing, state.sizes_seen, state.long
        state.stats.close_caps()
        state.stats.length_fn = final.stats.length_fn
        final.stats = state.stats

    keys = ex.map_batches(lined, partial(prompt_keys, final.mode))
    if cfg.enabled("duplicates"):
        hits = ex.group_reduce(keys, key_on("_dk"), duplicate_hits)
        n, examples = ex.aggregate(hits, partial(hits_partial, limit), partial(merge_hits, limit), (0, []))
        final.t["duplicates"] = tally_of(limit, n, examples)
    firsts = ex.group_reduce(keys, key_on("_ph"), first_of_prompt)
    final.distinct_prompts = range(ex.aggregate(firsts, count_rows, _add, 0))  # finish() reads its len()
    if final.near is not None:
        drops = near_drops(ex, firsts, cfg.near_duplicate_threshold, cfg.num_perm, 3, cfg.seed)
        shown = sorted(drops)[:limit]
        need = frozenset(shown) | {drops[d][0] for d in shown}
        ids = ex.aggregate(firsts, partial(ids_of, ex.broadcast(need), ex.resolve), merge_dicts, {})
        examples = [(d, ids[d], f"~{drops[d][1]:.2f} similar to line {drops[d][0]} (id {ids[drops[d][0]]})")
                    for d in shown]
        final.t["near_duplicates"] = tally_of(limit, len(drops), examples)
    report = final.finish()
    checked = sum(n for n, _, _ in spans.values())
    return report, {"checked": checked, "failed_checks": len(report.failed)}


__all__ = ["run_check", "KEY"]
