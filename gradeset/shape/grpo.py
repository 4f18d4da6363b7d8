"""Prompt-only rows for GRPO, GSPO and Dr. GRPO, and KTO rows.

GRPO, GSPO (sequence-level importance ratios) and Dr. GRPO (unscaled, length-unbiased
loss) all train on the same data: prompts plus whatever the reward function needs
(``answer``, ``task``, test cases, ...). They differ only in trainer settings.

Graded groups tell which prompts are worth it: a prompt the model always gets right
(or always wrong) gives every sample the same reward, so its advantage is zero and it
contributes no gradient. ``min_pass_rate``/``max_pass_rate`` keep a band of
difficulty measured on the graded samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gradeset.records import ensure_id, pass_rate
from gradeset.shape.scoring import ShapeError, bump, is_correct, sample_order, skip, text_of


def _check_band(lo: float | None, hi: float | None) -> None:
    for name, v in (("min_pass_rate", lo), ("max_pass_rate", hi)):
        if v is not None and not 0.0 <= v <= 1.0:
            raise ShapeError(f"{name} must be in [0, 1], got {v}")
    if lo is not None and hi is not None and lo > hi:
        raise ShapeError(f"min_pass_rate {lo} is above max_pass_rate {hi}: nothing could pass")


def iter_grpo(groups: Iterable[dict], min_pass_rate: float | None = None, max_pass_rate: float | None = None, *,
              keep_responses: bool = False, stats: dict | None = None, on_skip=None) -> Iterator[dict]:
    """Prompt rows (groups without responses, with ``pass_rate`` when graded).

    ``keep_responses=True`` keeps the graded samples: seed 001's offline group layout.
    """
    _check_band(min_pass_rate, max_pass_rate)
    band = min_pass_rate is not None or max_pass_rate is not None
    stats = {} if stats is None else stats
    for g in groups:
        ensure_id(g)
        bump(stats, "groups")
        rate = pass_rate(g)
        reason = None
        if band:
            if not g.get("responses"):
                reason = "empty"
            elif rate is None:
                reason = "ungraded"
            elif min_pass_rate is not None and rate < min_pass_rate:
                reason = "below-band"
            elif max_pass_rate is not None and rate > max_pass_rate:
                reason = "above-band"
        if reason:
            skip(stats, g, reason, on_skip)
            continue
        row = {k: v for k, v in g.items() if k != "responses"}
        if rate is not None:
            row["pass_rate"] = round(rate, 6)
        row["responses"] = list(g.get("responses") or []) if keep_responses else []
        bump(stats, "used")
        bump(stats, "prompts")
        yield row
    stats.setdefault("groups", 0)
    stats.setdefault("prompts", 0)


def build_grpo(groups: Iterable[dict], min_pass_rate: float | None = None, max_pass_rate: float | None = None,
               keep_responses: bool = False) -> list[dict]:
    return list(iter_grpo(groups, min_pass_rate, max_pass_rate, keep_responses=keep_responses))


def iter_kto(groups: Iterable[dict], *, correct_threshold: float = 1.0, dedup: bool = True,
             stats: dict | None = None, on_skip=None) -> Iterator[dict]:
    """One single-response group per graded response, with ``label`` (desirable or not)."""
    stats = {} if stats is None else stats
    for g in groups:
        ensure_id(g)
        bump(stats, "groups")
        responses = g.get("responses") or []
        reason = None
        if not responses:
            reason = "empty"
        else:
            labelled = [(i, is_correct(responses[i], correct_threshold)) for i in sample_order(g)]
            labelled = [(i, f) for i, f in labelled if f is not None]
            if not labelled:
                reason = "ungraded"
        if reason:
            skip(stats, g, reason, on_skip)
            continue
        bump(stats, "used")
        seen: set[tuple[str, bool]] = set()
        base = {k: v for k, v in g.items() if k != "responses"}
        for i, flag in labelled:
            key = (text_of(responses[i]).strip(), flag)
            if dedup and key in seen:
                bump(stats, "duplicate_responses")
                continue
            seen.add(key)
            row = dict(base)
            row["responses"] = [dict(responses[i])]
            row["label"] = bool(flag)
            bump(stats, "desirable" if flag else "undesirable")
            bump(stats, "rows")
            yield row
    for k in ("groups", "rows", "desirable", "undesirable"):
        stats.setdefault(k, 0)


def build_kto(groups: Iterable[dict], correct_threshold: float = 1.0, dedup: bool = True
              ) -> tuple[list[dict], dict[str, Any]]:
    stats: dict[str, Any] = {}
    rows = list(iter_kto(groups, correct_threshold=correct_threshold, dedup=dedup, stats=stats))
    return rows, stats
