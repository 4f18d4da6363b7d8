"""Near-duplicate dedup (MinHash + banded LSH) as a partitioned program, staged like
datatrove / NeMo-Curator: signatures -> band buckets -> candidate edges -> components.

The in-process rule (:meth:`~gradeset.shape.dedup.NearIndex.query_add`): in ORD order, a
text is dropped when it shares an LSH band bucket with an earlier *kept* text whose guard
(numbers) is equal and whose estimated Jaccard is >= threshold; the duplicate it names is
the first such kept text in (band, ORD) order. Which rows are kept therefore depends only
on the graph E of "similar" pairs (same bucket in some band, equal guard, estimate >=
threshold): walk nodes in ORD order, drop a node with a kept earlier neighbour. That walk
is the same as resolving each connected component of E on its own, so:

1. map: each text -> one row per band ``(band, band bytes, guard hash)`` with its ORD and
   signature (``num_perm`` x 4 bytes, base64). Guard equality is part of the bucket key.
2. group_reduce by bucket: every pair in a bucket with estimate >= threshold is an edge
   ``(a, b, band, estimate)`` (quadratic in a bucket's size; buckets hold near twins).
3. group_reduce of all edges in one call (memory ~100 bytes per edge, independent of the
   row count; datatrove does the same union-find in one task): the ORD-order walk above,
   which resolves every component exactly as the streaming index would.
4. the dropped ORDs (with twin and estimate) come back through ``aggregate`` and are
   broadcast as a set for a filtering map: 8 bytes per dropped row (a Python set: ~60).

Shuffle volume per text: bands x (signature 684 B + key ~60 B), e.g. 9 bands at
num_perm=128 and threshold 0.85 -> ~6.7 kB; edges are ~60 B each. "near" and "both" run
exact dedup first (the in-process ``Deduper`` does too), then this on the survivors.
"""

from __future__ import annotations

import base64
import hashlib
from functools import partial
from typing import Any

from gradeset.distributed.executor import ORD, Executor, Rows
from gradeset.distributed.programs.common import KEY, key_on, nonzero, ord_of, strip_fields
from gradeset.distributed.programs.exact import exact_survivors
from gradeset.shape.dedup import MinHasher, lsh_params, numbers_guard
from gradeset.shape.scoring import ShapeError
from gradeset.shape.text import prompt_key_text

TEXT, GUARD = "_t", "_g"
EDGES = "E"


def band_rows(cfg: tuple[int, int, int, int, int], rows: Rows) -> Rows:
    """One row per (text, band); ``cfg`` = (num_perm, ngram, seed, bands, rows per band)."""
    num_perm, ngram, seed, bands, r = cfg
    hasher = MinHasher(num_perm, ngram, seed)
    out = []
    for item in rows:
        sig = hasher.signature(item[TEXT])
        g = item.get(GUARD)  # a tuple here, a list after a JSON hop (Ray): hash its items
        guard = hashlib.blake2b(("-" if g is None else "\x1e" + "\x1f".join(g)).encode("utf-8", "surrogatepass"),
                                digest_size=16).hexdigest()
        packed = base64.b64encode(sig.tobytes()).decode("ascii")
        for b in range(bands):
            out.append({KEY: f"{b}:{sig[b * r:(b + 1) * r].tobytes().hex()}:{guard}", ORD: item[ORD],
                        "_b": b, "_s": packed})
    return out


def bucket_edges(threshold: float, group: Rows) -> Rows:
    """Similar pairs of one bucket (rows sorted by ORD): the graph's edges."""
    if len(group) < 2:
        return []
    import numpy as np

    sigs = np.stack([np.frombuffer(base64.b64decode(g["_s"]), dtype=np.uint32) for g in group])
    out = []
    for j in range(1, len(group)):
        est = (sigs[:j] == sigs[j]).mean(axis=1)
        for i in np.flatnonzero(est >= threshold):
            out.append({KEY: EDGES, "_a": group[int(i)][ORD], "_z": group[j][ORD], "_b": group[j]["_b"],
                        "_e": float(est[i])})
    return out


def resolve_edges(edges: Rows) -> Rows:
    """The streaming walk over all edges: for each dropped node, its twin and estimate."""
    best: dict[tuple[int, int], tuple[int, float]] = {}
    for e in edges:
        pair = (e["_a"], e["_z"])
        if pair not in best or e["_b"] < best[pair][0]:
            best[pair] = (e["_b"], e["_e"])
    earlier: dict[int, list[tuple[int, int, float]]] = {}
    nodes: set[int] = set()
    for (a, z), (band, est) in best.items():
        earlier.setdefault(z, []).append((band, a, est))
        nodes.update((a, z))
    dropped: dict[int, tuple[int, float]] = {}
    out = []
    for n in sorted(nodes):
        kept_before = [t for t in earlier.get(n, ()) if t[1] not in dropped]
        if kept_before:
            band, twin, est = min(kept_before)
            dropped[n] = (twin, est)
            out.append({ORD: n, "_twin": twin, "_e": est})
    return out


def _collect(rows: Rows) -> dict[int, tuple[int, float]]:
    return {r[ORD]: (r["_twin"], r["_e"]) for r in rows}


def _merge_dicts(a: dict, b: dict) -> dict:
    return {**a, **b}


def lsh_config(threshold: float, num_perm: int, ngram: int, seed: int) -> tuple[int, int, int, int, int]:
    if not 0.0 < threshold <= 1.0:
        raise ShapeError(f"near-dup threshold must be in (0, 1], got {threshold}")
    bands, r = lsh_params(threshold, num_perm)
    return num_perm, ngram, seed, bands, r


def near_drops(ex: Executor, items: Any, threshold: float, num_perm: int = 128, ngram: int = 3,
               seed: int = 1) -> dict[int, tuple[int, float]]:
    """``items`` rows carry ORD, ``_t`` (text) and ``_g`` (guard): dropped ORD -> (twin ORD, estimate)."""
    cfg = lsh_config(threshold, num_perm, ngram, seed)
    bands = ex.map_batches(items, partial(band_rows, cfg))
    edges = ex.group_reduce(bands, key_on(KEY), partial(bucket_edges, threshold))
    drops = ex.group_reduce(edges, key_on(KEY), resolve_edges)
    return ex.aggregate(drops, _collect, _merge_dicts, {})


def near_items(key: str, guard: bool, rows: Rows) -> Rows:
    out = []
    for r in rows:
        text = prompt_key_text(r, key)
        out.append({ORD: ord_of(r), TEXT: text, GUARD: numbers_guard(text) if guard else None})
    return out


def drop_ords(handle: Any, resolve: Any, rows: Rows) -> Rows:
    gone = resolve(handle)
    return [r for r in strip_fields((KEY,), rows) if ord_of(r) not in gone]


def run_near_dedup(ex: Executor, ds: Any, params: dict) -> tuple[Any, dict[str, int]]:
    key = params.get("key", "prompt")
    kept, groups, dups = exact_survivors(ex, ds, key)
    items = ex.map_batches(kept, partial(near_items, key, params.get("numbers_must_match", True)))
    drops = near_drops(ex, items, params.get("threshold", 0.85), params.get("num_perm", 128),
                       params.get("ngram", 3), params.get("seed", 1))
    out = ex.map_batches(kept, partial(drop_ords, ex.broadcast(frozenset(drops)), ex.resolve))
    near = len(drops)
    return out, nonzero([("groups", groups), ("exact_duplicates", dups), ("near_duplicates", near),
                         ("kept", groups - dups - near)])
