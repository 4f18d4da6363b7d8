"""Exact prompt dedup as a partitioned program: hash-partition on the normalised-text hash.

Why: the in-process :class:`~gradeset.shape.dedup.Deduper` keeps the first occurrence of
each normalised text; "first" is the smallest :data:`ORD`, and every row with one text
meets in one ``group_reduce`` call (sorted by ORD), so keeping the head of each group is
the same rule without any process seeing every key.

Costs per row: one map (normalise + 12-byte blake2b, the in-process cost), one shuffle of
the whole row plus a 24-byte hex key, and in the reduce only the rows of one key at a time.
The survivor carries ``_dups`` (how many rows it stood for) so the stats need no second
pass over the input; the driver receives two integers per block.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gradeset.distributed.executor import Executor, Rows
from gradeset.distributed.programs.common import KEY, add, key_on, nonzero, strip_fields
from gradeset.records import ensure_id
from gradeset.shape.text import prompt_key_text, text_hash

DUPS = "_dups"


def tag_text_hash(key: str, rows: Rows) -> Rows:
    """Each row copied with its id (as ``Deduper.check`` gives it) and its dedup key."""
    out = []
    for r in rows:
        r = ensure_id(dict(r))
        r[KEY] = text_hash(prompt_key_text(r, key)).hex()
        out.append(r)
    return out


def keep_first(group: Rows) -> Rows:
    """``group`` is sorted by ORD: the head is the first occurrence."""
    head = dict(group[0])
    head[DUPS] = len(group) - 1
    return [head]


def _partial_counts(rows: Rows) -> tuple[int, int]:
    return len(rows), sum(r[DUPS] for r in rows)


def _merge_counts(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return add(a[0], b[0]), add(a[1], b[1])


def exact_survivors(ex: Executor, ds: Any, key: str = "prompt") -> tuple[Any, int, int]:
    """(rows with the first of each text, still carrying ``_k``; groups in; exact duplicates)."""
    tagged = ex.map_batches(ds, partial(tag_text_hash, key))
    kept = ex.group_reduce(tagged, key_on(KEY), keep_first)
    kept_n, dups = ex.aggregate(kept, _partial_counts, _merge_counts, (0, 0))
    return ex.map_batches(kept, partial(strip_fields, (DUPS,))), kept_n + dups, dups


def run_exact(ex: Executor, ds: Any, params: dict) -> tuple[Any, dict[str, int]]:
    kept, groups, dups = exact_survivors(ex, ds, params.get("key", "prompt"))
    out = ex.map_batches(kept, partial(strip_fields, (KEY,)))
    return out, nonzero([("groups", groups), ("exact_duplicates", dups), ("kept", groups - dups)])
