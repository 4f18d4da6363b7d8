"""Text fingerprints for duplicate, near-duplicate and test-overlap checks.

Everything here is one pass and bounded per item: an 8-byte hash per prompt for exact
duplicates, a ``num_perm``-word MinHash signature for near duplicates (LSH bands find
candidates, the signature estimates the Jaccard similarity), and word n-grams of the
(small) test set. numpy only (imported when the near-duplicate check runs), so checks need
no extra package.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_PRIME = (1 << 61) - 1


def normalize(text: str) -> str:
    """Case-, width- and whitespace-insensitive form used for exact duplicate detection."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def words(text: str) -> list[str]:
    return _WORD.findall(normalize(text))


def ngrams(tokens: list[str], n: int) -> set[str]:
    """Word n-grams; a text shorter than n words is one gram (so short prompts still match)."""
    if len(tokens) < n:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def _h32(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")


class MinHasher:
    """MinHash over word 3-gram shingles with universal hashing (a*x + b) mod (2^61 - 1)."""

    def __init__(self, num_perm: int = 64, shingle: int = 3, seed: int = 0):
        import numpy as np

        self.np = np
        rng = np.random.default_rng(seed)
        # a, b < 2^31 and x < 2^32 keep a*x + b below 2^63: no uint64 overflow
        self.a = rng.integers(1, 1 << 31, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint64)
        self.shingle = shingle
        self.num_perm = num_perm

    def signature(self, text: str) -> Any:
        np = self.np
        toks = words(text)
        grams = ngrams(toks, self.shingle)
        if not grams:
            return None
        x = np.fromiter((_h32(g) for g in grams), dtype=np.uint64, count=len(grams))
        vals = (np.outer(x, self.a) + self.b) % np.uint64(_PRIME)
        return vals.min(axis=0).astype(np.uint32)


def lsh_params(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows) whose S-curve 1 - (1 - s^r)^b crosses 1/2 closest to the threshold."""
    best, best_err = (num_perm, 1), 9.0
    for rows in range(1, num_perm + 1):
        if num_perm % rows:
            continue
        bands = num_perm // rows
        s_half = (1 - 0.5 ** (1 / bands)) ** (1 / rows)
        # bias towards lower crossing: candidates are verified with the signature anyway
        err = abs(s_half - (threshold - 0.1))
        if err < best_err:
            best, best_err = (bands, rows), err
    return best


class NearDuplicateIndex:
    """Streaming near-duplicate finder: add prompts one by one, get the earlier near twin."""

    def __init__(self, num_perm: int = 64, threshold: float = 0.8, seed: int = 0):
        self.hasher = MinHasher(num_perm, seed=seed)
        self.threshold = threshold
        self.bands, self.rows = lsh_params(num_perm, threshold)
        self.tables: list[dict[bytes, int]] = [{} for _ in range(self.bands)]
        self.signatures: list[Any] = []
        self.keys: list[object] = []

    def add(self, text: str, key: object) -> tuple[object, float] | None:
        """Index text under key; return (key of an earlier near duplicate, similarity) or None."""
        sig = self.hasher.signature(text)
        if sig is None:
            return None
        found: tuple[object, float] | None = None
        idx = len(self.signatures)
        candidates: set[int] = set()
        band_keys = [sig[i * self.rows:(i + 1) * self.rows].tobytes() for i in range(self.bands)]
        for table, bk in zip(self.tables, band_keys, strict=True):
            j = table.get(bk)
            if j is not None:
                candidates.add(j)
        for j in sorted(candidates):
            sim = float((self.signatures[j] == sig).mean())
            if sim >= self.threshold and (found is None or sim > found[1]):
                found = (self.keys[j], sim)
        for table, bk in zip(self.tables, band_keys, strict=True):
            table.setdefault(bk, idx)
        self.signatures.append(sig)
        self.keys.append(key)
        return found


def build_test_index(texts: Iterable[str], n: int) -> tuple[set[str], set[bytes]]:
    """The n-grams and normalised-text hashes of the test prompts."""
    grams: set[str] = set()
    exact: set[bytes] = set()
    for t in texts:
        toks = words(t)
        grams |= ngrams(toks, n)
        exact.add(text_hash(normalize(t)))
    return grams, exact
