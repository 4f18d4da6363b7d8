"""Decontamination: drop training prompts that overlap benchmark questions.

Prompts and benchmark questions are tokenised the same way (words and symbols,
normalised), cut into n-grams (a text shorter than n is one gram: the whole text, so
"79-7=?" matches "79 - 7 = ?"), and a prompt is contaminated when the share of shared
n-grams reaches ``min_overlap`` of the shorter of the two texts. Taking the shorter
side catches a benchmark question pasted inside a longer prompt and vice versa;
n-grams that occur in more than ``max_df`` benchmark rows (shared boilerplate such as
"put your final answer within \\boxed{}") are ignored so they cannot match everything.

With ``numbers_must_match`` (the default) the numbers of the shorter text must all occur
in the longer one: "8-x=42,x=?" shares most of its n-grams with "50-x=42,x=?", yet it is
another question, as dedup also holds. A benchmark question pasted into a longer prompt
brings its numbers along, so that case still matches.

Removed rows keep the matching benchmark row, file and line, so a person can check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError
from gradeset.records import ensure_id, is_messages, prompt_text
from gradeset.shape.scoring import ShapeError, bump
from gradeset.shape.text import numbers, tokens

TEXT_FIELDS = ("prompt", "question", "problem", "instruction", "query", "input", "text", "messages", "positive")


def _grams(toks: list[str], n: int) -> set[int]:
    if not toks:
        return set()
    if len(toks) <= n:
        return {hash(tuple(toks))}
    return {hash(tuple(toks[i:i + n])) for i in range(len(toks) - n + 1)}


def benchmark_text(row: dict, field: str | None = None) -> str | None:
    """The question of a benchmark row: ``field`` if given, else the first usual field."""
    names = (field,) if field else TEXT_FIELDS
    for name in names:
        v = row.get(name)
        if v is None:
            continue
        if is_messages(v):
            return prompt_text(v)
        if isinstance(v, str) and v.strip():
            if name == "positive":  # seed 002 pairs: the question is before "The answer is"
                return v.split(" The answer is", 1)[0]
            return v
    return None


class BenchmarkIndex:
    """n-gram index of benchmark questions (built once, queried per prompt)."""

    def __init__(self, ngram: int = 8, min_overlap: float = 0.5, max_df: int = 50, numbers_must_match: bool = True):
        if ngram < 1:
            raise ShapeError(f"ngram must be >= 1, got {ngram}")
        if not 0.0 <= min_overlap <= 1.0:
            raise ShapeError(f"min_overlap must be in [0, 1], got {min_overlap}")
        self.n, self.min_overlap, self.max_df = ngram, min_overlap, max_df
        self.numbers_must_match = numbers_must_match
        self.numbers: list[Counter[str]] = []
        self.index: dict[int, list[int]] = {}
        self.rows: list[tuple[str, int, str, dict]] = []  # (file, line, text, raw row)
        self.sizes: list[int] = []
        self.short_lengths: set[int] = set()

    def add(self, text: str, source: str, line: int, row: dict) -> None:
        toks = tokens(text)
        if not toks:
            return
        i = len(self.rows)
        grams = _grams(toks, self.n)
        if len(toks) < self.n:
            self.short_lengths.add(len(toks))
        self.rows.append((source, line, text, row))
        self.sizes.append(len(grams))
        self.numbers.append(Counter(numbers(toks)))
        for g in grams:
            self.index.setdefault(g, []).append(i)

    def add_file(self, path: str | Path, field: str | None = None) -> int:
        from gradeset.io import iter_rows

        p = Path(path)
        if not p.exists():
            raise GradesetError(f"{path}: benchmark file not found")
        n = 0
        for line, row in iter_rows(p, None):
            text = benchmark_text(row, field)
            if text:
                self.add(text, str(path), line, row)
                n += 1
        if n == 0:
            raise GradesetError(f"{path}: no benchmark questions found (looked for "
                                f"{field or ', '.join(TEXT_FIELDS)})")
        return n

    def match(self, text: str) -> dict | None:
        """The best-overlapping benchmark row when it reaches ``min_overlap``, else None."""
        toks = tokens(text)
        if not toks:
            return None
        grams = _grams(toks, self.n)
        for length in self.short_lengths:
            if length < len(toks):
                grams |= {hash(tuple(toks[i:i + length])) for i in range(len(toks) - length + 1)}
        own = len(_grams(toks, self.n))
        hits: dict[int, int] = {}
        for g in grams:
            rows = self.index.get(g)
            if not rows or len(rows) > self.max_df:
                continue
            for i in rows:
                hits[i] = hits.get(i, 0) + 1
        nums = Counter(numbers(toks)) if self.numbers_must_match else None
        best, best_ratio = None, 0.0
        for i, h in hits.items():
            ratio = min(1.0, h / max(1, min(own, self.sizes[i])))
            if ratio < max(self.min_overlap, 1e-12) or (ratio < best_ratio) or (
                    ratio == best_ratio and best is not None and i > best):
                continue
            if nums is not None and not _same_numbers(nums, self.numbers[i]):
                continue
            best, best_ratio = i, ratio
        if best is None:
            return None
        source, line, btext, row = self.rows[best]
        return {"benchmark": source, "line": line, "text": btext, "overlap": round(best_ratio, 4),
                "benchmark_row": row}


def _same_numbers(a: Counter[str], b: Counter[str]) -> bool:
    """The numbers of the text with fewer of them all occur in the other (as a multiset)."""
    small, big = (a, b) if sum(a.values()) <= sum(b.values()) else (b, a)
    return all(big[k] >= v for k, v in small.items())


class Decontaminator:
    def __init__(self, benchmarks: Sequence[str], ngram: int = 8, min_overlap: float = 0.5, max_df: int = 50,
                 field: str | None = None, numbers_must_match: bool = True):
        if not benchmarks:
            raise ShapeError("decontaminate needs at least one benchmark file")
        self.index = BenchmarkIndex(ngram, min_overlap, max_df, numbers_must_match)
        self.loaded = {str(b): self.index.add_file(b, field) for b in benchmarks}
        self.stats: dict[str, int] = {}

    def check(self, group: dict) -> dict | None:
        ensure_id(group)
        bump(self.stats, "groups")
        hit = self.index.match(prompt_text(group.get("prompt")))
        if hit:
            bump(self.stats, "contaminated")
        else:
            bump(self.stats, "kept")
        return hit

    def filter(self, groups: Iterable[dict], removed: list | None = None) -> Iterator[dict]:
        for g in groups:
            hit = self.check(g)
            if hit is None:
                yield g
            elif removed is not None:
                removed.append(dict(g, contamination=hit))


def decontaminate(groups: Iterable[dict], benchmarks: Sequence[str], **params: Any
                  ) -> tuple[list[dict], list[dict], dict]:
    """(kept, removed with their ``contamination`` record, stats)."""
    d = Decontaminator(benchmarks, **params)
    removed: list[dict] = []
    kept = list(d.filter(groups, removed))
    return kept, removed, d.stats


class DecontaminateStep:
    """Runner step; the benchmark index is built lazily in each process (it never pickles)."""

    def __init__(self, benchmarks: Sequence[str] | str, ngram: int = 8, min_overlap: float = 0.5, max_df: int = 50,
                 field: str | None = None, numbers_must_match: bool = True):
        if isinstance(benchmarks, str):
            benchmarks = [benchmarks]
        self.params = dict(benchmarks=list(benchmarks), ngram=ngram, min_overlap=min_overlap, max_df=max_df,
                           field=field, numbers_must_match=numbers_must_match)
        self._d: Decontaminator | None = None
        self.stats: dict[str, int] = {}

    def __call__(self, batch: list[dict]) -> list[dict]:
        if self._d is None:
            self._d = Decontaminator(**self.params)
            self._d.stats = self.stats
        return [g for g in batch if self._d.check(g) is None]

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])
