"""Streaming dataset statistics for the report: counters and histograms, never the rows.

One :class:`DatasetStats` sees each group once; memory is bounded by the number of
distinct lengths / slice values, not the number of rows. Everything in it is a mergeable
partial aggregate (:meth:`DatasetStats.merge`), so a cluster can count blocks of rows on
workers and combine them into the same result as one pass (see ``partial``). It is also what a pipeline
runner calls to describe any stage (``collect_stats``) without running the checks.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradeset.records import bucket, pass_rate, prompt_text, response_text
from gradeset.shape.scoring import stable_unit

SLICES = ("task", "category", "difficulty", "source")
MAX_SLICE_VALUES = 200
SCORE_BINS = 20
TEXT_LIMIT = 4000
LEVELS = ("very easy", "easy", "medium", "hard", "very hard", "expert")

LengthFn = Callable[[list[str]], list[int]]
SAMPLING_KEYS = ("model", "backend", "temperature", "top_p", "max_tokens", "system_prompt")


def word_lengths(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def tokenizer_lengths(path: str) -> LengthFn:
    """Token counts with a local Hugging Face tokenizer (no special tokens)."""
    from gradeset.errors import GradesetError, require

    transformers = require("transformers", "transformers", "token lengths (--tokenizer)")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's path
        raise GradesetError(f"{path}: cannot load a tokenizer: {exc}") from exc

    def lengths(texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

    return lengths


def _count(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        return None
    return int(v)


def valid_score(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v) and 0.0 <= v <= 1.0


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """Exact quantile (linear interpolation) of a value -> count table."""
    n = sum(counts.values())
    if n == 0:
        return None
    pos = q * (n - 1)
    lo_i, hi_i = math.floor(pos), math.ceil(pos)
    lo = hi = None
    seen = 0
    for value in sorted(counts):
        c = counts[value]
        if lo is None and lo_i < seen + c:
            lo = value
        if hi_i < seen + c:
            hi = value
            break
        seen += c
    assert lo is not None and hi is not None
    return lo + (hi - lo) * (pos - lo_i)


def histogram(counts: Mapping[int, int], bins: int = 30) -> list[dict]:
    """Bins of a length table; the last bin collects everything above the 99th percentile."""
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    p99 = quantile(counts, 0.99) or hi
    top = max(lo + 1, math.ceil(p99))
    width = max(1, math.ceil((top - lo + 1) / bins))
    out = [{"start": lo + i * width, "end": lo + (i + 1) * width, "count": 0}
           for i in range(math.ceil((top - lo + 1) / width))]
    overflow = 0
    for value, c in counts.items():
        i = (value - lo) // width
        if i < len(out):
            out[i]["count"] += c
        else:
            overflow += c
    if overflow:
        out.append({"start": out[-1]["end"], "end": hi + 1, "count": overflow, "overflow": True})
    return out


def length_summary(counts: Mapping[int, int]) -> dict:
    if not counts:
        return {"n": 0}
    n = sum(counts.values())
    return {"n": n, "min": min(counts), "max": max(counts),
            "mean": sum(k * v for k, v in counts.items()) / n,
            "p50": quantile(counts, 0.5), "p25": quantile(counts, 0.25), "p75": quantile(counts, 0.75),
            "p99": quantile(counts, 0.99)}


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters]"


def sample_view(group: Mapping[str, Any], line: int | None) -> dict:
    """A trimmed copy of a group for the report (bounded size whatever the input)."""
    responses = []
    for i, r in enumerate(group.get("responses") or []):
        if not isinstance(r, Mapping):
            continue
        meta = r.get("meta") if isinstance(r.get("meta"), Mapping) else {}
        responses.append({"index": i, "text": _clip(response_text(r)), "score": r.get("score"),
                          "correct": r.get("correct"), "parsed": None if r.get("parsed") is None
                          else _clip(str(r.get("parsed")), 500),
                          "finish_reason": meta.get("finish_reason"), "label": r.get("label"),
                          "detail": None if meta.get("verify_detail") is None
                          else _clip(str(meta.get("verify_detail")), 300)})
        if len(responses) >= 32:
            break
    return {"id": group.get("id"), "line": line, "prompt": _clip(prompt_text(group.get("prompt"))),
            "answer": None if group.get("answer") is None else _clip(str(group.get("answer")), 500),
            "task": group.get("task"), "category": group.get("category"),
            "difficulty": group.get("difficulty"), "bucket": bucket(group),
            "pass_rate": pass_rate(group), "responses": responses,
            "n_responses": len(group.get("responses") or [])}


@dataclass
class DatasetStats:
    """Counts, histograms and a bounded stratified sample of one stream of groups."""

    length_fn: LengthFn = word_lengths
    unit: str = "words"
    sample_size: int = 60
    seed: int = 0
    groups: int = 0
    responses: int = 0
    scored: int = 0
    graded: int = 0
    correct: int = 0
    score_bins: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)
    pass_rate_bins: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)
    buckets: Counter = field(default_factory=Counter)
    group_sizes: Counter = field(default_factory=Counter)
    finish_reasons: Counter = field(default_factory=Counter)
    usage: list = field(default_factory=lambda: [0, 0, 0])  # responses with usage, prompt, completion tokens
    cost: float | None = None  # sum of meta.cost where generate recorded one
    verify_paths: Counter = field(default_factory=Counter)  # meta.verify_path: exact / symbolic / judge
    prompt_lengths: Counter = field(default_factory=Counter)
    response_lengths: Counter = field(default_factory=Counter)
    slices: dict[str, dict[str, list[int]]] = field(default_factory=lambda: {s: {} for s in SLICES})
    # what explains wrong answers: lengths by verdict, why responses were wrong or unparsed,
    # how many distinct answers a group gave, and how the responses were sampled
    lengths_by_verdict: dict[str, Counter] = field(default_factory=lambda: {"correct": Counter(), "wrong": Counter()})
    wrong_reasons: Counter = field(default_factory=Counter)
    unparsed: int = 0
    distinct_answers: Counter = field(default_factory=Counter)
    sampling: Counter = field(default_factory=Counter)
    _reservoirs: dict[str, list] = field(default_factory=dict)
    # partial=True (a block counted on a worker): the 200-value caps are left to close_caps()
    # and the first (line, position) of each capped or top-N key is kept, so merged blocks
    # cap and order exactly as one pass in line order would
    partial: bool = False
    _first: dict = field(default_factory=dict)
    _at: int = 0

    def _seen_at(self, table: str, key: Any, pos: int) -> None:
        if self.partial:
            k = (table, key)
            if k not in self._first:
                self._first[k] = (self._at, pos)

    def add(self, group: Mapping[str, Any], line: int | None = None,
            lengths: tuple[int, list[int]] | None = None) -> None:
        """Count one valid group; ``lengths`` = (prompt length, response lengths) if known."""
        self.groups += 1
        self._at = line or 0
        responses = [r for r in group.get("responses") or [] if isinstance(r, Mapping)]
        self.responses += len(responses)
        self.group_sizes[len(responses)] += 1
        if lengths is None:
            lengths = self.lengths_of(group)
        self.prompt_lengths[lengths[0]] += 1
        for n in lengths[1]:
            self.response_lengths[n] += 1
        graded = correct = 0
        answers: set[str] = set()
        for i, (r, n_tokens) in enumerate(zip(responses, lengths[1])):
            self._explain(r, n_tokens, answers, i)
        if answers:
            self.distinct_answers[len(answers)] += 1
        for i, r in enumerate(responses):
            s = r.get("score")
            if valid_score(s):
                self.scored += 1
                self.score_bins[min(SCORE_BINS - 1, int(s * SCORE_BINS))] += 1
            c = r.get("correct")
            if isinstance(c, bool):
                graded += 1
                correct += c
            meta = r.get("meta")
            if isinstance(meta, Mapping):
                if meta.get("finish_reason") is not None:
                    self.finish_reasons[key := str(meta["finish_reason"])[:40]] += 1
                    self._seen_at("finish_reasons", key, i)
                if meta.get("verify_path") is not None:
                    self.verify_paths[key := str(meta["verify_path"])[:20]] += 1
                    self._seen_at("verify_paths", key, i)
                self._add_usage(meta)
        self.graded += graded
        self.correct += correct
        rate = pass_rate(group)
        if rate is not None:
            self.pass_rate_bins[min(SCORE_BINS - 1, int(rate * SCORE_BINS))] += 1
        b = bucket(group)
        self.buckets[b] += 1
        for name in SLICES:
            value = group.get(name)
            if value is None:
                continue
            table = self.slices[name]
            key = str(value)[:80]
            if self.partial:
                self._seen_at(name, key, 0)
            elif key not in table and len(table) >= MAX_SLICE_VALUES:
                key = "(other)"
            row = table.setdefault(key, [0, 0, 0])
            row[0] += 1
            row[1] += graded
            row[2] += correct
        self._sample(b, group, line)

    def _add_usage(self, meta: Mapping[str, Any]) -> None:
        """Tokens and cost that ``generate`` recorded from the server's ``usage`` (hostile: numbers only)."""
        usage = meta.get("usage")
        if isinstance(usage, Mapping):
            p, c = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
            if p is not None or c is not None:
                # As billed, like generate's own total: a prompt sent once for n samples counts
                # once, and a two-step stage 2 sent its prompt again.
                share = max(1, _count(meta.get("request_samples")) or 1)
                self.usage[0] += 1
                self.usage[1] += (p or 0) / share + (_count(meta.get("stage2_prompt_tokens")) or 0)
                self.usage[2] += c or 0
        cost = meta.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
            self.cost = (self.cost or 0.0) + cost

    def _explain(self, r: Mapping[str, Any], n_tokens: int, answers: set[str], pos: int = 0) -> None:
        c = r.get("correct")
        meta = r.get("meta") if isinstance(r.get("meta"), Mapping) else {}
        if isinstance(c, bool):
            self.lengths_by_verdict["correct" if c else "wrong"][n_tokens] += 1
        parsed = r.get("parsed")
        if parsed is not None:
            answers.add(str(parsed).strip()[:200])
        elif isinstance(c, bool) or r.get("score") is not None:
            self.unparsed += 1
        if c is False or (parsed is None and isinstance(c, bool)):
            why = meta.get("verify_detail") or ("no answer found" if parsed is None else "answer differs from the gold")
            self.wrong_reasons[why := str(why)[:120]] += 1
            self._seen_at("wrong_reasons", why, pos)
        model = meta.get("model")
        if model is not None or meta.get("backend") is not None:
            key = tuple(str(meta.get(k))[:80] if meta.get(k) is not None else "" for k in SAMPLING_KEYS)
            if self.partial:
                self._seen_at("sampling", key, pos)
            elif key not in self.sampling and len(self.sampling) >= MAX_SLICE_VALUES:
                return
            self.sampling[key] += 1

    def lengths_of(self, group: Mapping[str, Any]) -> tuple[int, list[int]]:
        texts = [prompt_text(group.get("prompt"))]
        texts += [response_text(r) for r in group.get("responses") or [] if isinstance(r, Mapping)]
        ns = self.length_fn(texts)
        return ns[0], ns[1:]

    def _sample(self, b: str, group: Mapping[str, Any], line: int | None) -> None:
        """Per bucket (so rare buckets still show up in the report), the groups with the
        smallest hash of (seed, id, line): a uniform sample that, unlike a reservoir fed by
        one random stream, does not depend on arrival order, so blocks merge exactly."""
        if self.sample_size <= 0:
            return
        per = max(1, self.sample_size // 3)
        prio = stable_unit(self.seed, f"{group.get('id')}\x1f{line}")
        res = self._reservoirs.setdefault(b, [])  # heap of (-prio, -line, -count, view): the smallest kept
        item = (-prio, -(line or 0), -self.groups)
        if len(res) < per:
            heapq.heappush(res, (*item, sample_view(group, line)))
        elif item > res[0][:3]:
            heapq.heapreplace(res, (*item, sample_view(group, line)))

    def sample(self) -> list[dict]:
        order = ("mixed", "all-wrong", "all-correct", "ungraded")
        out = []
        for b in order + tuple(sorted(k for k in self._reservoirs if k not in order)):
            views = [t[-1] for t in self._reservoirs.get(b, [])]
            out.extend(sorted(views, key=lambda v: (v["line"] is None, v["line"] or 0)))
        return out

    # -- partial aggregates ---------------------------------------------------------
    def merge(self, other: DatasetStats) -> DatasetStats:
        """Add a block counted with ``partial=True`` (lines disjoint from this one's)."""
        for name in ("groups", "responses", "scored", "graded", "correct", "unparsed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.score_bins = [a + b for a, b in zip(self.score_bins, other.score_bins, strict=True)]
        self.pass_rate_bins = [a + b for a, b in zip(self.pass_rate_bins, other.pass_rate_bins, strict=True)]
        for name in ("buckets", "group_sizes", "finish_reasons", "verify_paths", "prompt_lengths",
                     "response_lengths", "wrong_reasons", "distinct_answers", "sampling"):
            getattr(self, name).update(getattr(other, name))
        for k in self.lengths_by_verdict:
            self.lengths_by_verdict[k].update(other.lengths_by_verdict[k])
        self.usage = [a + b for a, b in zip(self.usage, other.usage, strict=True)]
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost
        for name, table in other.slices.items():
            mine = self.slices.setdefault(name, {})
            for key, row in table.items():
                cell = mine.setdefault(key, [0, 0, 0])
                for i in range(3):
                    cell[i] += row[i]
        for b, res in other._reservoirs.items():
            per = max(1, self.sample_size // 3)
            both = self._reservoirs.get(b, []) + res
            self._reservoirs[b] = heapq.nlargest(per, both, key=lambda t: t[:3])
            heapq.heapify(self._reservoirs[b])
        for k, at in other._first.items():
            if k not in self._first or at < self._first[k]:
                self._first[k] = at
        return self

    def close_caps(self) -> None:
        """After the last merge: the caps and first-seen order one pass in line order gives."""
        first = self._first

        def by_first(table: str, counter: Counter) -> Counter:
            return Counter({k: counter[k] for k in sorted(counter, key=lambda k: first.get((table, k), (0, 0)))})

        for name in ("finish_reasons", "verify_paths", "wrong_reasons"):
            setattr(self, name, by_first(name, getattr(self, name)))
        ordered = by_first("sampling", self.sampling)
        self.sampling = Counter({k: ordered[k] for k in list(ordered)[:MAX_SLICE_VALUES]})
        for name, table in self.slices.items():
            keys = sorted(table, key=lambda k: first.get((name, k), (0, 0)))
            capped: dict[str, list[int]] = {}
            for i, k in enumerate(keys):
                key = k if i < MAX_SLICE_VALUES or k in capped else "(other)"
                cell = capped.setdefault(key, [0, 0, 0])
                for j in range(3):
                    cell[j] += table[k][j]
            self.slices[name] = capped
        self.partial = False
        self._first = {}

    def to_dict(self) -> dict:
        """JSON-ready summary (also what the HTML report draws)."""
        slices = {}
        for name, table in self.slices.items():
            if not table:
                continue
            rows = [{"value": k, "groups": v[0], "graded": v[1], "correct": v[2],
                     "pass_rate": (v[2] / v[1]) if v[1] else None} for k, v in table.items()]
            known = {v: i for i, v in enumerate(LEVELS)}
            if all(r["value"].lower() in known for r in rows):
                rows.sort(key=lambda r: known[r["value"].lower()])
            else:
                rows.sort(key=lambda r: (-r["groups"], r["value"]))
            slices[name] = rows
        edges = [i / SCORE_BINS for i in range(SCORE_BINS + 1)]
        return {
            "groups": self.groups, "responses": self.responses, "scored": self.scored,
            "graded": self.graded, "correct": self.correct,
            "accuracy": (self.correct / self.graded) if self.graded else None,
            "coverage": (self.scored / self.responses) if self.responses else None,
            "unit": self.unit,
            "buckets": dict(self.buckets),
            "group_sizes": {str(k): v for k, v in sorted(self.group_sizes.items())},
            "finish_reasons": dict(self.finish_reasons.most_common(20)),
            "tokens": ({"responses_with_usage": self.usage[0], "prompt_tokens": round(self.usage[1]),
                        "completion_tokens": self.usage[2],
                        "cost": None if self.cost is None else round(self.cost, 10)}
                       if self.usage[0] or self.cost is not None else None),
            "verify_paths": dict(self.verify_paths.most_common(10)),
            "score_histogram": [{"start": edges[i], "end": edges[i + 1], "count": c}
                                for i, c in enumerate(self.score_bins)],
            "pass_rate_histogram": [{"start": edges[i], "end": edges[i + 1], "count": c}
                                    for i, c in enumerate(self.pass_rate_bins)],
            "prompt_length": length_summary(self.prompt_lengths),
            "response_length": length_summary(self.response_lengths),
            "prompt_length_histogram": histogram(self.prompt_lengths),
            "response_length_histogram": histogram(self.response_lengths),
            "slices": slices,
            "length_by_verdict": {k: length_summary(v) for k, v in self.lengths_by_verdict.items()},
            "wrong_reasons": dict(self.wrong_reasons.most_common(15)),
            "unparsed": self.unparsed,
            "distinct_answers": {str(k): v for k, v in sorted(self.distinct_answers.items())},
            "sampling": [{**dict(zip(SAMPLING_KEYS, k, strict=True)), "responses": v}
                         for k, v in self.sampling.most_common(10)],
        }


def collect_stats(groups: Iterable[Mapping[str, Any]], *, length_fn: LengthFn = word_lengths,
                  unit: str = "words", sample_size: int = 0) -> dict:
    """Statistics of any stage's groups, e.g. for a runner's per-stage counts."""
    st = DatasetStats(length_fn=length_fn, unit=unit, sample_size=sample_size)
    for g in groups:
        st.add(g)
    return st.to_dict()
