"""Prompt dedup: exact (normalised text) and near-duplicate (MinHash + LSH).

Both are streaming: the first occurrence is kept, later ones are dropped and can be
written aside with ``duplicate_of``. Exact dedup holds a 12-byte hash per distinct
prompt; near dedup holds one small signature per kept prompt plus the LSH buckets.

The MinHash is our own (numpy, ~40 lines) rather than datasketch: same maths,
no extra dependency, and signatures that are plain arrays a Ray worker can ship.
Near-dup is opt-in because short math prompts that differ in one number ("79-7=?",
"79-8=?") are different questions; word n-gram shingles keep numbers as tokens, so
they only collide when most of the text is shared.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from gradeset.records import ensure_id
from gradeset.shape.scoring import ShapeError, bump
from gradeset.shape.text import normalize, prompt_key_text, text_hash, tokens

_MERSENNE = (1 << 61) - 1
_NUMBER = re.compile(r"\d+")
METHODS = ("exact", "near", "both")


def numbers_guard(text: str) -> tuple[str, ...]:
    """Near duplicates must carry the same numbers ("180 miles" vs "240 miles" are two questions)."""
    return tuple(sorted(_NUMBER.findall(text)))


def _false_rates(threshold: float, b: int, r: int) -> float:
    import numpy as np

    xs = np.linspace(0.0, 1.0, 201)
    p = 1.0 - (1.0 - xs**r) ** b  # chance two texts of Jaccard x share a band
    fp = np.trapezoid(np.where(xs < threshold, p, 0.0), xs)
    fn = np.trapezoid(np.where(xs >= threshold, 1.0 - p, 0.0), xs)
    return float(fp + fn)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands x rows minimising false positives + false negatives around the threshold."""
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = _false_rates(threshold, b, r)
            if err < best_err:
                best, best_err = (b, r), err
    return best


class MinHasher:
    """MinHash signatures over word n-gram shingles (uint32, ``num_perm`` values)."""

    def __init__(self, num_perm: int = 128, ngram: int = 3, seed: int = 1):
        import numpy as np

        rng = np.random.RandomState(seed)
        self.num_perm, self.ngram = num_perm, ngram
        self.a = rng.randint(1, 1 << 32, size=num_perm, dtype=np.uint64)
        self.b = rng.randint(0, 1 << 32, size=num_perm, dtype=np.uint64)

    def shingles(self, text: str) -> set[str]:
        toks = tokens(text)
        n = self.ngram
        if len(toks) <= n:
            return {" ".join(toks)}
        return {" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)}

    def signature(self, text: str):
        import numpy as np

        sh = self.shingles(text)
        h = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in sh), dtype=np.uint64, count=len(sh))
        v = (h[:, None] * self.a[None, :] + self.b[None, :]) % np.uint64(_MERSENNE)
        return (v & np.uint64(0xFFFFFFFF)).min(axis=0).astype(np.uint32)


class NearIndex:
    """LSH over MinHash signatures: ``query_add`` returns the kept item a text duplicates."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 128, ngram: int = 3, seed: int = 1):
        if not 0.0 < threshold <= 1.0:
            raise ShapeError(f"near-dup threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self.sigs: list[Any] = []
        self.keys: list[Any] = []
        self.guards: list[Any] = []

    def query_add(self, text: str, key: Any, guard: Any = None) -> tuple[Any, float] | None:
        """(key of the duplicate, estimated Jaccard), or None after adding text as new.

        Only items with an equal ``guard`` can match (dedup passes the prompt's numbers,
        so "... 180 miles" and "... 240 miles" stay two questions).
        """
        sig = self.hasher.signature(text)
        r = self.rows
        parts = [sig[i * r:(i + 1) * r].tobytes() for i in range(self.bands)]
        seen: set[int] = set()
        for table, part in zip(self.tables, parts, strict=True):
            for idx in table.get(part, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                if self.guards[idx] != guard:
                    continue
                est = float((self.sigs[idx] == sig).mean())
                if est >= self.threshold:
                    return self.keys[idx], est
        idx = len(self.sigs)
        self.sigs.append(sig)
        self.keys.append(key)
        self.guards.append(guard)
        for table, part in zip(self.tables, parts, strict=True):
            table.setdefault(part, []).append(idx)
        return None


class Deduper:
    """Stateful, streaming prompt dedup. ``check(group)`` -> None (keep) or the reason record."""

    def __init__(self, method: str = "exact", key: str = "prompt", threshold: float = 0.85, num_perm: int = 128,
                 ngram: int = 3, seed: int = 1, numbers_must_match: bool = True):
        if method not in METHODS:
            raise ShapeError(f"unknown dedup method {method!r}; choose one of {', '.join(METHODS)}")
        if key not in ("prompt", "prompt+answer"):
            raise ShapeError(f"dedup key must be 'prompt' or 'prompt+answer', got {key!r}")
        self.method, self.key = method, key
        self.numbers_must_match = numbers_must_match
        self.exact: dict[bytes, str] = {}
        self.near = NearIndex(threshold, num_perm, ngram, seed) if method in ("near", "both") else None
        self.stats: dict[str, int] = {}

    def check(self, group: dict) -> dict | None:
        ensure_id(group)
        bump(self.stats, "groups")
        text = prompt_key_text(group, self.key)
        h = text_hash(text)
        first = self.exact.get(h)
        if first is not None:
            bump(self.stats, "exact_duplicates")
            return {"kind": "exact", "duplicate_of": first}
        self.exact[h] = group["id"]
        if self.near is not None:
            guard = numbers_guard(text) if self.numbers_must_match else None
            hit = self.near.query_add(text, group["id"], guard)
            if hit is not None:
                bump(self.stats, "near_duplicates")
                return {"kind": "near", "duplicate_of": hit[0], "similarity": round(hit[1], 4)}
        bump(self.stats, "kept")
        return None

    def filter(self, groups: Iterable[dict], removed: list | None = None) -> Iterator[dict]:
        for g in groups:
            why = self.check(g)
            if why is None:
                yield g
            elif removed is not None:
                removed.append(dict(g, dedup=why))


def dedup(groups: Iterable[dict], method: str = "exact", **params: Any) -> tuple[list[dict], list[dict], dict]:
    """(kept, removed with their ``dedup`` reason, stats)."""
    d = Deduper(method, **params)
    removed: list[dict] = []
    kept = list(d.filter(groups, removed))
    return kept, removed, d.stats


class DedupStep:
    """Runner step. State spans the whole stream in ``process`` (and across ``__call__``s
    within one process; under Ray, dedup per worker unless the runner uses ``process``)."""

    def __init__(self, method: str = "exact", key: str = "prompt", threshold: float = 0.85, num_perm: int = 128,
                 ngram: int = 3, seed: int = 1, numbers_must_match: bool = True):
        self.params = dict(method=method, key=key, threshold=threshold, num_perm=num_perm, ngram=ngram, seed=seed,
                           numbers_must_match=numbers_must_match)
        self._d = Deduper(**self.params)
        self.stats = self._d.stats

    def __call__(self, batch: list[dict]) -> list[dict]:
        return [g for g in batch if self._d.check(g) is None]

    def process(self, batches: Iterable[list[dict]]) -> Iterator[list[dict]]:
        for batch in batches:
            out = self(batch)
            if out:
                yield out

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])


__all__ = ["DedupStep", "Deduper", "MinHasher", "NearIndex", "dedup", "lsh_params", "normalize", "numbers_guard"]
