"""Preference pairs from graded groups (TRL ``prompt/chosen/rejected``).

A pair is itself a group whose ``responses`` are ``[chosen, rejected]``; it keeps the
parent's fields (answer, task, ...) and records ``score_chosen``, ``score_rejected``
and ``margin`` so a trainer or a check can weight or filter by them later.

Rules every strategy obeys: a pair's chosen score is strictly higher than its
rejected score (by at least ``min_margin``), the two texts differ, and a group where
every score ties yields nothing (counted as ``tied``), because a pair of equals
teaches the model noise.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from gradeset.records import ensure_id
from gradeset.shape.scoring import (
    ShapeError,
    bump,
    effective_score,
    is_correct,
    skip,
    stable_rng_seed,
    text_of,
)

STRATEGIES = ("best-worst", "correct-vs-incorrect", "all-pairs")

# Reasons a group yields no pair; they are stats keys and the CLI's "skipped" reasons.
SKIP_REASONS = ("empty", "ungraded", "single", "tied", "all-correct", "all-wrong", "below-margin", "same-text",
                "duplicate")


def _pair_id(parent: str, chosen: str, rejected: str) -> str:
    h = hashlib.blake2b(f"{parent}\x1f{chosen}\x1f{rejected}".encode(), digest_size=8)
    return h.hexdigest()


def _pair_key(pair: dict) -> int:
    """64-bit content key of a pair (an int: the smallest thing a set can hold per pair)."""
    c, r = pair["responses"]
    h = hashlib.blake2b(orjson.dumps(pair.get("prompt")), digest_size=8)
    h.update(b"\x1f" + text_of(c).encode("utf-8", "replace") + b"\x1f" + text_of(r).encode("utf-8", "replace"))
    return int.from_bytes(h.digest(), "big")


def make_pair(group: dict, chosen: dict, rejected: dict, score_chosen: float, score_rejected: float) -> dict:
    """The pair group: parent fields, responses [chosen, rejected], both scores and the margin."""
    pair = {k: v for k, v in group.items() if k != "responses"}
    pair["parent_id"] = group["id"]
    pair["id"] = _pair_id(group["id"], text_of(chosen), text_of(rejected))
    pair["responses"] = [dict(chosen), dict(rejected)]
    pair["score_chosen"] = score_chosen
    pair["score_rejected"] = score_rejected
    pair["margin"] = round(score_chosen - score_rejected, 12)
    return pair


def _graded(group: dict, stats: dict) -> list[tuple[int, dict, float]]:
    out = []
    for i, r in enumerate(group.get("responses") or []):
        s = r.get("score") if type(r) is dict else None
        if type(s) is float:  # the common case, without the general fallbacks
            out.append((i, r, s))
            continue
        s = effective_score(r) if isinstance(r, dict) else None
        if s is None:
            bump(stats, "responses_ungraded")
            continue
        out.append((i, r, s))
    return out


def _best_worst(graded, k: int, min_margin: float) -> tuple[list[tuple], str | None]:
    """Pair the best with the worst, then the next best with the next worst (no reuse).

    A rejected candidate with the same text as the chosen one is passed over (a flaky
    verifier can grade one text twice), so such a group still yields its best real pair.
    """
    if k == 1:
        # one pair: best and worst directly (first sampled among equals), no sorting
        c = max(graded, key=lambda t: (t[2], -t[0]))
        r = min(graded, key=lambda t: (t[2], t[0]))
        margin = c[2] - r[2]
        if margin > 0 and margin >= min_margin and text_of(c[1]).strip() != text_of(r[1]).strip():
            return [(c, r)], None
    desc = sorted(graded, key=lambda t: (-t[2], t[0]))
    asc = sorted(graded, key=lambda t: (t[2], t[0]))
    used: set[int] = set()
    pairs: list[tuple] = []
    for c in desc:
        if len(pairs) >= k:
            break
        if c[0] in used:
            continue
        for r in asc:
            if r[0] in used or r[0] == c[0]:
                continue
            margin = c[2] - r[2]
            if margin <= 0 or margin < min_margin:
                break  # ascending scores: every later r has a smaller margin
            if text_of(c[1]).strip() == text_of(r[1]).strip():
                continue
            pairs.append((c, r))
            used.update((c[0], r[0]))
            break
    reason = None
    if not pairs:
        spread = desc[0][2] - asc[0][2]
        reason = "tied" if spread <= 0 else "below-margin" if spread < min_margin else "same-text"
    return pairs, reason


def _spread(cands: list[tuple], k: int) -> list[tuple]:
    """Up to k candidate pairs, first those whose chosen and rejected are both unused."""
    used_c: set[int] = set()
    used_r: set[int] = set()
    picked: list[tuple] = []
    rest: list[tuple] = []
    for c, r in cands:
        if c[0] in used_c or r[0] in used_r:
            rest.append((c, r))
            continue
        picked.append((c, r))
        used_c.add(c[0])
        used_r.add(r[0])
        if len(picked) >= k:
            return picked
    return picked + rest[: k - len(picked)]


def _filter_pairs(cands: list[tuple], min_margin: float) -> tuple[list[tuple], str | None]:
    out, same, small = [], False, False
    for c, r in cands:
        margin = c[2] - r[2]
        if margin <= 0:
            continue
        if margin < min_margin:
            small = True
            continue
        if text_of(c[1]).strip() == text_of(r[1]).strip():
            same = True
            continue
        out.append((c, r))
    reason = None if out else "same-text" if same else "below-margin" if small else "tied"
    return out, reason


def pairs_for_group(group: dict, strategy: str = "best-worst", *, min_margin: float = 0.0,
                    pairs_per_prompt: int | None = 1, seed: int = 0, correct_threshold: float = 1.0,
                    stats: dict | None = None) -> tuple[list[dict], str | None]:
    """Pairs of one group, or ([], reason) naming why it yields none."""
    stats = {} if stats is None else stats
    ensure_id(group)
    responses = group.get("responses") or []
    if not responses:
        return [], "empty"
    graded = _graded(group, stats)
    if not graded:
        return [], "ungraded"
    if len(graded) < 2:
        return [], "single"
    if len({s for _, _, s in graded}) == 1 and strategy != "correct-vs-incorrect":
        return [], "tied"
    k = pairs_per_prompt if pairs_per_prompt and pairs_per_prompt > 0 else 1 << 30
    if strategy == "best-worst":
        chosen, reason = _best_worst(graded, k, min_margin)
    elif strategy == "correct-vs-incorrect":
        flags = [(t, is_correct(t[1], correct_threshold)) for t in graded]
        good = [t for t, f in flags if f is True]
        bad = [t for t, f in flags if f is False]
        if not good and not bad:
            return [], "ungraded"
        if not bad:
            return [], "all-correct"
        if not good:
            return [], "all-wrong"
        # A correct answer can still score lower than an incorrect one (partial credit):
        # keep the pair only when the scores agree with the labels.
        cands = [(c, r) for c in good for r in bad]
        random.Random(stable_rng_seed(seed, group["id"])).shuffle(cands)
        cands, reason = _filter_pairs(cands, min_margin)
        chosen = _spread(cands, k)
    elif strategy == "all-pairs":
        cands = [(c, r) for c in graded for r in graded if c[2] > r[2]]
        random.Random(stable_rng_seed(seed, group["id"])).shuffle(cands)
        cands.sort(key=lambda p: -(p[0][2] - p[1][2]))  # widest margins first, random among equals
        cands, reason = _filter_pairs(cands, min_margin)
        chosen = cands[:k]
    else:
        raise ShapeError(f"unknown DPO strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not chosen:
        return [], reason or "tied"
    return [make_pair(group, c[1], r[1], c[2], r[2]) for c, r in chosen], None


def iter_dpo(groups: Iterable[dict], strategy: str = "best-worst", *, min_margin: float = 0.0,
             pairs_per_prompt: int | None = 1, seed: int = 0, correct_threshold: float = 1.0,
             stats: dict | None = None, on_skip=None, dedup: bool = True) -> Iterator[dict]:
    """Stream pairs; ``stats`` (updated in place) counts groups, pairs and every skip reason.

    ``on_skip(group, reason)`` is called for each group that yields no pair, so a
    command can reject ungraded groups while counting ties as skips. With ``dedup``
    (default) a pair whose prompt, chosen and rejected texts were all seen before is
    dropped (``duplicate_pairs``): repeated groups would otherwise repeat pairs, as in
    seed 002 where most of 400k pairs are copies. A group left with none is ``duplicate``.
    """
    if strategy not in STRATEGIES:
        raise ShapeError(f"unknown DPO strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if min_margin < 0:
        raise ShapeError(f"--min-margin must be >= 0, got {min_margin}")
    stats = {} if stats is None else stats
    seen: set[int] = set()
    for g in groups:
        bump(stats, "groups")
        pairs, reason = pairs_for_group(g, strategy, min_margin=min_margin, pairs_per_prompt=pairs_per_prompt,
                                        seed=seed, correct_threshold=correct_threshold, stats=stats)
        if pairs and dedup:
            fresh = []
            for p in pairs:
                key = _pair_key(p)
                if key in seen:
                    bump(stats, "duplicate_pairs")
                    continue
                seen.add(key)
                fresh.append(p)
            pairs = fresh
            if not pairs:
                reason = "duplicate"
        if reason:
            skip(stats, g, reason, on_skip)
            continue
        bump(stats, "used")
        bump(stats, "pairs", len(pairs))
        yield from pairs


def build_dpo(groups: Iterable[dict], strategy: str = "best-worst", min_margin: float = 0.0,
              pairs_per_prompt: int | None = 1, seed: int = 0, correct_threshold: float = 1.0
              ) -> tuple[list[dict], dict[str, Any]]:
    """(pair groups, stats). ``pairs_per_prompt=None`` means all (for ``all-pairs``)."""
    stats: dict[str, Any] = {}
    pairs = list(iter_dpo(groups, strategy, min_margin=min_margin, pairs_per_prompt=pairs_per_prompt,
                          seed=seed, correct_threshold=correct_threshold, stats=stats))
    stats.setdefault("groups", 0)
    stats.setdefault("pairs", 0)
    stats.setdefault("used", 0)
    return pairs, stats
