"""SFT examples from graded groups: one group with one response per training example.

Strategies:

* ``best`` — the highest-scored response of each group (ties: the first sampled);
  groups whose best score is 0 yield nothing unless ``min_score`` says otherwise.
* ``all-correct`` — every correct response, each distinct text once.
* ``first-correct`` — seed 004's traces: the first correct response in *sampling*
  order, else (with ``fallback="reference"``) the group's reference solution. Its
  stats use the seed's sidecar keys, so a ``.stats.json`` reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gradeset.records import ensure_id
from gradeset.shape.scoring import ShapeError, bump, effective_score, is_correct, sample_order, skip, text_of

STRATEGIES = ("best", "all-correct", "first-correct")
FALLBACKS = (None, "reference")


def sft_example(group: dict, response: dict, origin: str, **extra: Any) -> dict:
    """A group with a single response; ``sft_origin`` says whether it was sampled or the reference."""
    ex = {k: v for k, v in group.items() if k != "responses"}
    ex["responses"] = [dict(response)]
    ex["sft_origin"] = origin
    ex.update(extra)
    return ex


def _reference_text(group: dict) -> str | None:
    ref = group.get("reference")
    if isinstance(ref, str) and ref.strip():
        return ref
    return None


class _FirstCorrectTally:
    """Seed 004's counters; ``attempts`` counts samples looked at, fallbacks included."""

    def __init__(self) -> None:
        self.total = self.successes = self.fallbacks = self.dropped = 0
        self.attempts_success = self.attempts_all = 0

    def stats(self) -> dict[str, Any]:
        def ratio(a: float, b: int) -> float:
            return round(a / b, 6) if b else 0.0

        return {
            "total_samples": self.total,
            "successes": self.successes,
            "grpo_successes": self.successes,  # the seed's own name for the same count
            "fallback_count": self.fallbacks,
            "dropped": self.dropped,
            "success_rate": ratio(self.successes, self.total),
            "avg_attempts_for_successes": ratio(self.attempts_success, self.successes),
            "avg_attempts_overall": ratio(self.attempts_all, self.total),
        }


def _first_correct_one(group: dict, fallback: str | None, max_attempts: int | None, threshold: float,
                       tally: _FirstCorrectTally) -> tuple[dict | None, str | None]:
    responses = group.get("responses") or []
    order = sample_order(group)
    if max_attempts:
        order = order[:max_attempts]
    graded = [i for i in order if is_correct(responses[i], threshold) is not None]
    if responses and not graded:
        return None, "ungraded"
    tally.total += 1
    for n, i in enumerate(order, 1):
        if is_correct(responses[i], threshold):
            tally.successes += 1
            tally.attempts_success += n
            tally.attempts_all += n
            return sft_example(group, responses[i], "sample", attempts=n), None
    tally.attempts_all += len(order)
    ref = _reference_text(group) if fallback == "reference" else None
    if ref is None:
        tally.dropped += 1
        return None, ("no-reference" if fallback == "reference" else "no-correct")
    tally.fallbacks += 1
    resp = {"text": ref, "score": None, "correct": None, "parsed": None, "meta": {"origin": "reference"}}
    return sft_example(group, resp, "reference", attempts=len(order)), None


def iter_sft(groups: Iterable[dict], strategy: str = "best", fallback: str | None = None, *,
             min_score: float | None = None, max_attempts: int | None = None, correct_threshold: float = 1.0,
             stats: dict | None = None, on_skip=None) -> Iterator[dict]:
    """Stream SFT examples; ``stats`` is updated in place (seed 004 keys for first-correct)."""
    if strategy not in STRATEGIES:
        raise ShapeError(f"unknown SFT strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if fallback not in FALLBACKS:
        raise ShapeError(f"unknown fallback {fallback!r}; the only fallback is 'reference'")
    if fallback and strategy == "all-correct":
        raise ShapeError("--fallback applies to 'best' and 'first-correct', not 'all-correct'")
    stats = {} if stats is None else stats
    tally = _FirstCorrectTally()

    for g in groups:
        ensure_id(g)
        bump(stats, "groups")
        responses = g.get("responses") or []
        if strategy == "first-correct":
            ex, reason = _first_correct_one(g, fallback, max_attempts, correct_threshold, tally)
            stats.update(tally.stats())
            if reason:
                skip(stats, g, reason, on_skip)
            else:
                bump(stats, "used")
                bump(stats, "examples")
                yield ex
            continue
        if not responses:
            ref = _reference_text(g) if fallback == "reference" else None
            if ref is not None:
                bump(stats, "fallback_count")
                bump(stats, "used")
                bump(stats, "examples")
                yield sft_example(g, {"text": ref, "score": None, "correct": None, "parsed": None}, "reference")
            else:
                skip(stats, g, "empty", on_skip)
            continue
        if strategy == "best":
            graded = [(effective_score(r), i) for i, r in enumerate(responses)]
            graded = [(s, i) for s, i in graded if s is not None]
            if not graded:
                skip(stats, g, "ungraded", on_skip)
                continue
            order = {i: n for n, i in enumerate(sample_order(g))}
            best_s, best_i = max(graded, key=lambda t: (t[0], -order[t[1]]))
            ok = best_s > 0 if min_score is None else best_s >= min_score
            if not ok:
                ref = _reference_text(g) if fallback == "reference" else None
                if ref is None:
                    skip(stats, g, "below-min-score", on_skip)
                    continue
                bump(stats, "fallback_count")
                bump(stats, "used")
                bump(stats, "examples")
                yield sft_example(g, {"text": ref, "score": None, "correct": None, "parsed": None}, "reference")
                continue
            bump(stats, "used")
            bump(stats, "examples")
            yield sft_example(g, responses[best_i], "sample")
        else:  # all-correct
            flags = [is_correct(r, correct_threshold) for r in responses]
            if all(f is None for f in flags):
                skip(stats, g, "ungraded", on_skip)
                continue
            seen: set[str] = set()
            n = 0
            for i in sample_order(g):
                if not flags[i]:
                    continue
                t = text_of(responses[i]).strip()
                if t in seen:
                    bump(stats, "duplicate_responses")
                    continue
                seen.add(t)
                n += 1
                yield sft_example(g, responses[i], "sample")
            if n == 0:
                skip(stats, g, "no-correct", on_skip)
            else:
                bump(stats, "used")
                bump(stats, "examples", n)
    stats.setdefault("groups", 0)
    stats.setdefault("examples", 0)
    if strategy == "first-correct":
        stats.update(tally.stats())


def build_sft(groups: Iterable[dict], strategy: str = "best", fallback: str | None = None, *,
              min_score: float | None = None, max_attempts: int | None = None,
              correct_threshold: float = 1.0) -> list[dict]:
    """SFT examples (groups with one response each). Use :func:`iter_sft` for the stats."""
    return list(iter_sft(groups, strategy, fallback, min_score=min_score, max_attempts=max_attempts,
                         correct_threshold=correct_threshold))


def first_correct(groups: Iterable[dict], fallback: str | None = "reference", *, max_attempts: int | None = None,
                  correct_threshold: float = 1.0) -> tuple[list[dict], dict[str, Any]]:
    """Seed 004's traces: (examples, stats with the seed's sidecar keys). Pure over groups.

    ``max_attempts`` looks at only the first N sampled responses (the seed's
    ``--max-attempts``). A group with no correct sample and no reference is dropped and
    counted in ``dropped``; groups whose responses are all ungraded are counted in
    ``skipped_ungraded`` and are not part of ``total_samples``.
    """
    stats: dict[str, Any] = {}
    rows = list(iter_sft(groups, "first-correct", fallback, max_attempts=max_attempts,
                         correct_threshold=correct_threshold, stats=stats))
    return rows, stats
