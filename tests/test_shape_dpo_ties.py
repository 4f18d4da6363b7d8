"""Issue 17: DPO pairs never tie, for every strategy and several pairs per prompt.

Groups whose lower scores tie ([1.0, 0.5, 0.5, 0.5]) are where a ``margin <= 0`` check
turned into ``margin < 0`` would first let a zero-margin pair through: after the best
response is used, the rest can only pair with each other.
"""

from __future__ import annotations

import itertools

import pytest

from gradeset.records import new_group
from gradeset.shape import build_dpo
from gradeset.shape.dpo import STRATEGIES


def group(prompt: str, scored: list[tuple[float, bool]]) -> dict:
    rs = [{"text": f"{prompt} answer {i} scored {s}", "score": s, "correct": c, "meta": {"sample_index": i}}
          for i, (s, c) in enumerate(scored)]
    return new_group(prompt, "gold", responses=rs)


# (scores with correct flags, pairs the best-worst / correct-vs-incorrect / all-pairs strategies
# can make at most with a strict margin; every tie among the lower scores is a trap)
TIED_GROUPS = [
    [(1.0, True), (0.5, False), (0.5, False), (0.5, False)],
    [(0.5, False), (1.0, True), (0.5, False), (0.5, False)],
    [(1.0, True), (1.0, True), (0.0, False), (0.0, False)],
    [(1.0, True), (0.5, True), (0.5, False), (0.0, False)],   # a correct and a wrong answer tie at 0.5
    [(0.5, True), (0.5, False), (0.5, False), (0.0, False)],
]


def strict_pairs(scored: list[tuple[float, bool]]) -> int:
    return sum(1 for a, b in itertools.permutations(scored, 2) if a[0] > b[0])


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("per_prompt", [1, 2, 3, 4, None])
@pytest.mark.parametrize("scored", TIED_GROUPS)
def test_no_pair_has_margin_zero(strategy, per_prompt, scored):
    g = group("q", scored)
    pairs, stats = build_dpo([g], strategy, pairs_per_prompt=per_prompt)
    assert pairs, "a group with a strictly better response must yield a pair"
    for p in pairs:
        assert p["score_chosen"] > p["score_rejected"]
        assert p["margin"] > 0
        chosen, rejected = p["responses"]
        assert chosen["score"] > rejected["score"] and chosen["text"] != rejected["text"]
    assert len(pairs) <= strict_pairs(scored)
    assert stats["pairs"] == len(pairs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_best_then_tied_rest_gives_exactly_the_strict_pairs(strategy):
    """[1.0, 0.5, 0.5, 0.5]: the only strict pairs have the 1.0 response as chosen."""
    g = group("q", TIED_GROUPS[0])
    pairs, _ = build_dpo([g], strategy, pairs_per_prompt=None)
    assert {p["score_chosen"] for p in pairs} == {1.0}
    expected = {"best-worst": 1, "correct-vs-incorrect": 3, "all-pairs": 3}[strategy]
    assert len(pairs) == expected
