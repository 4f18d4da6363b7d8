"""Shaping strategies on small graded groups: ties, empty groups, ungraded groups, margins."""

from __future__ import annotations

import pytest

from gradeset.records import new_group
from gradeset.shape import ShapeError, build_dpo, build_grpo, build_kto, build_sft, first_correct, iter_sft


def G(prompt, *responses, **fields):
    """A group from (text, score, correct) tuples; sample_index is the list position unless given."""
    rs = []
    for i, r in enumerate(responses):
        text, score, correct = (r + (None,) * 3)[:3]
        rs.append({"text": text, "score": score, "correct": correct, "meta": {"sample_index": i}})
    return new_group(prompt, fields.pop("answer", None), responses=rs, **fields)


def texts(pair):
    return pair["responses"][0]["text"], pair["responses"][1]["text"]


# -- DPO ------------------------------------------------------------------------------

def test_best_worst_pairs_highest_with_lowest_and_records_scores():
    g = G("q", ("mid", 0.5), ("top", 0.9), ("low", 0.1))
    pairs, stats = build_dpo([g], "best-worst")
    assert [texts(p) for p in pairs] == [("top", "low")]
    p = pairs[0]
    assert (p["score_chosen"], p["score_rejected"], p["margin"]) == (0.9, 0.1, 0.8)
    assert p["parent_id"] == g["id"] and p["id"] != g["id"]
    assert stats["pairs"] == 1 and stats["used"] == 1


def test_all_tied_group_yields_no_pair_and_is_counted():
    tied = G("q", ("a", 1.0), ("b", 1.0), ("c", 1.0))
    zero = G("q2", ("a", 0.0, False), ("b", 0.0, False))
    for strategy in ("best-worst", "all-pairs"):
        pairs, stats = build_dpo([tied, zero], strategy)
        assert pairs == [] and stats["skipped_tied"] == 2
    pairs, stats = build_dpo([tied, zero], "correct-vs-incorrect")
    assert pairs == [] and stats["skipped_all-correct"] == 1 and stats["skipped_all-wrong"] == 1


def test_empty_single_and_ungraded_groups_are_reported_not_crashed():
    groups = [G("empty"), G("one", ("a", 1.0)), G("ungraded", ("a",), ("b",))]
    pairs, stats = build_dpo(groups, "best-worst")
    assert pairs == []
    assert (stats["skipped_empty"], stats["skipped_single"], stats["skipped_ungraded"]) == (1, 1, 1)
    assert stats["groups"] == 3


def test_chosen_never_equals_rejected_even_with_same_text_graded_twice():
    # A flaky verifier graded the same text 1.0 and 0.0: that pair is skipped, the real one kept.
    g = G("q", ("same", 1.0), ("same", 0.0), ("other wrong", 0.2))
    for strategy in ("best-worst", "all-pairs", "correct-vs-incorrect"):
        pairs, _ = build_dpo([g], strategy, pairs_per_prompt=None)
        assert pairs, strategy
        assert all(a != b for a, b in map(texts, pairs)), strategy
    only_same = G("q", ("x", 1.0), (" x ", 0.0))
    pairs, stats = build_dpo([only_same], "best-worst")
    assert pairs == [] and stats["skipped_same-text"] == 1


def test_all_pairs_min_margin_and_pairs_per_prompt():
    g = G("q", ("a", 1.0), ("b", 0.7), ("c", 0.5), ("d", 0.0))
    pairs, _ = build_dpo([g], "all-pairs", pairs_per_prompt=None)
    assert len(pairs) == 6 and all(p["margin"] > 0 for p in pairs)
    pairs, _ = build_dpo([g], "all-pairs", min_margin=0.5, pairs_per_prompt=None)
    assert sorted(texts(p) for p in pairs) == [("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]
    assert all(p["margin"] >= 0.5 for p in pairs)
    top2, _ = build_dpo([g], "all-pairs", pairs_per_prompt=2)
    assert [p["margin"] for p in top2] == [1.0, 0.7]  # widest margins first
    narrow = G("q", ("a", 0.6), ("b", 0.5))
    pairs, stats = build_dpo([narrow], "all-pairs", min_margin=0.5)
    assert pairs == [] and stats["skipped_below-margin"] == 1


def test_best_worst_with_k_uses_each_response_once():
    g = G("q", ("a", 1.0), ("b", 0.9), ("c", 0.2), ("d", 0.0))
    pairs, _ = build_dpo([g], "best-worst", pairs_per_prompt=3)
    assert [texts(p) for p in pairs] == [("a", "d"), ("b", "c")]


def test_correct_vs_incorrect_spreads_pairs_and_is_reproducible():
    g = G("q", ("r1", 1.0, True), ("r2", 1.0, True), ("w1", 0.0, False), ("w2", 0.0, False))
    pairs, _ = build_dpo([g], "correct-vs-incorrect", pairs_per_prompt=2, seed=3)
    chosen = {texts(p)[0] for p in pairs}
    rejected = {texts(p)[1] for p in pairs}
    assert chosen == {"r1", "r2"} and rejected == {"w1", "w2"}  # no response reused while others are free
    again, _ = build_dpo([g], "correct-vs-incorrect", pairs_per_prompt=2, seed=3)
    assert [texts(p) for p in again] == [texts(p) for p in pairs]


def test_correct_flag_alone_is_a_grade_and_scores_alone_too():
    g = G("q", ("r", None, True), ("w", None, False))
    pairs, _ = build_dpo([g], "best-worst")
    assert texts(pairs[0]) == ("r", "w") and pairs[0]["margin"] == 1.0
    seed000 = G("Explain value traps.", ("best", 1.0), ("good", 0.6), ("poor", 0.2))
    pairs, _ = build_dpo([seed000], "correct-vs-incorrect")
    # scores alone: only 1.0 reaches the default correct threshold
    assert texts(pairs[0])[0] == "best" and texts(pairs[0])[1] in {"good", "poor"}


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ShapeError, match="unknown DPO strategy"):
        build_dpo([G("q", ("a", 1.0), ("b", 0.0))], "worst-best")


# -- SFT ------------------------------------------------------------------------------

def test_sft_best_picks_highest_score_first_sampled_on_ties():
    g = G("q", ("low", 0.2), ("hi-late", 1.0), ("hi-later", 1.0))
    (ex,) = build_sft([g], "best")
    assert ex["responses"][0]["text"] == "hi-late" and ex["sft_origin"] == "sample"
    assert build_sft([G("q", ("w", 0.0, False))], "best") == []  # best of nothing right is not taught


def test_sft_all_correct_keeps_each_distinct_correct_text():
    g = G("q", ("r", 1.0, True), ("w", 0.0, False), ("r", 1.0, True), ("r2", 1.0, True))
    out = build_sft([g], "all-correct")
    assert [e["responses"][0]["text"] for e in out] == ["r", "r2"]


def test_first_correct_follows_sample_order_and_seed004_stats():
    g1 = G("q1", ("w", 0.0, False), ("r-second", 1.0, True), ("r-third", 1.0, True), answer="5")
    # sample_index, not list order, decides which came first
    g1["responses"][2]["meta"]["sample_index"] = -1
    g2 = G("q2", ("w", 0.0, False), ("w2", 0.0, False), answer="7", reference="The reference. #### 7")
    g3 = G("q3", ("w", 0.0, False), answer="9")  # no reference: dropped
    g4 = G("q4", answer="1", reference="ref only")  # never sampled: fallback after 0 attempts
    rows, stats = first_correct([g1, g2, g3, g4], fallback="reference")
    assert [r["responses"][0]["text"] for r in rows] == ["r-third", "The reference. #### 7", "ref only"]
    assert [r["sft_origin"] for r in rows] == ["sample", "reference", "reference"]
    assert stats["total_samples"] == 4
    assert stats["successes"] == stats["grpo_successes"] == 1
    assert stats["fallback_count"] == 2 and stats["dropped"] == 1
    assert stats["success_rate"] == 0.25
    assert stats["avg_attempts_for_successes"] == 1.0  # r-third was sampled first
    assert stats["avg_attempts_overall"] == (1 + 2 + 1 + 0) / 4


def test_first_correct_max_attempts_and_ungraded():
    g = G("q", ("w", 0.0, False), ("w", 0.0, False), ("r", 1.0, True), reference="ref")
    rows, stats = first_correct([g], max_attempts=2)
    assert rows[0]["sft_origin"] == "reference" and stats["avg_attempts_overall"] == 2.0
    rows, stats = first_correct([G("q", ("a",), ("b",))])
    assert rows == [] and stats["skipped_ungraded"] == 1 and stats["total_samples"] == 0


def test_sft_fallback_only_where_it_means_something():
    with pytest.raises(ShapeError):
        build_sft([], "all-correct", fallback="reference")
    with pytest.raises(ShapeError):
        build_sft([], "nope")
    stats: dict = {}
    out = list(iter_sft([G("q", reference="r"), G("q2")], "best", "reference", stats=stats))
    assert len(out) == 1 and stats["skipped_empty"] == 1 and stats["fallback_count"] == 1


# -- GRPO / KTO -----------------------------------------------------------------------

def test_grpo_rows_are_prompt_only_with_reward_columns_and_band():
    easy = G("easy", ("r", 1.0, True), ("r", 1.0, True), answer="1", task="math", tests=["t1"])
    mixed = G("mixed", ("r", 1.0, True), ("w", 0.0, False), answer="2", task="math")
    hard = G("hard", ("w", 0.0, False), ("w", 0.0, False), answer="3", task="math")
    rows = build_grpo([easy, mixed, hard])
    assert [r["responses"] for r in rows] == [[], [], []]
    assert rows[0]["answer"] == "1" and rows[0]["task"] == "math" and rows[0]["tests"] == ["t1"]
    assert [r["pass_rate"] for r in rows] == [1.0, 0.5, 0.0]
    band = build_grpo([easy, mixed, hard], min_pass_rate=0.1, max_pass_rate=0.9)
    assert [r["prompt"] for r in band] == ["mixed"]
    offline = build_grpo([mixed], keep_responses=True)
    assert len(offline[0]["responses"]) == 2
    with pytest.raises(ShapeError):
        build_grpo([], min_pass_rate=0.8, max_pass_rate=0.2)


def test_kto_labels_each_graded_response_once():
    g = G("q", ("r", 1.0, True), ("w", 0.0, False), ("w", 0.0, False), ("u",))
    rows, stats = build_kto([g, G("empty")])
    assert [(r["responses"][0]["text"], r["label"]) for r in rows] == [("r", True), ("w", False)]
    assert stats["desirable"] == 1 and stats["undesirable"] == 1 and stats["skipped_empty"] == 1


def test_grpo_band_rejects_ungraded_and_empty_groups_with_reasons():
    seen = []
    from gradeset.shape import iter_grpo

    stats: dict = {}
    rows = list(iter_grpo([G("u", ("a",), ("b",)), G("e"), G("ok", ("r", 1.0, True), ("w", 0.0, False))],
                          min_pass_rate=0.1, stats=stats, on_skip=lambda g, why: seen.append((g["prompt"], why))))
    assert [r["prompt"] for r in rows] == ["ok"]
    assert seen == [("u", "ungraded"), ("e", "empty")]
    # without a band, prompt-only output needs no grades at all
    assert len(build_grpo([G("u", ("a",)), G("e")])) == 2


def test_kto_and_sft_on_groups_without_scores():
    rows, stats = build_kto([G("u", ("a",), ("b",))])
    assert rows == [] and stats["skipped_ungraded"] == 1
    stats = {}
    assert list(iter_sft([G("u", ("a",))], "best", stats=stats)) == [] and stats["skipped_ungraded"] == 1
    stats = {}
    assert list(iter_sft([G("u", ("a",))], "all-correct", stats=stats)) == [] and stats["skipped_ungraded"] == 1


def test_repeated_groups_do_not_repeat_pairs():
    def twin():
        return G("q", ("good", 1.0), ("bad", 0.0), source="copy")

    a = twin()
    b = twin()
    b["id"] = "another-id"  # same content under another id, as merged files often have
    pairs, stats = build_dpo([a, b, G("q", ("good", 1.0), ("worse", 0.0))])
    assert [texts(p) for p in pairs] == [("good", "bad"), ("good", "worse")]
    assert stats["duplicate_pairs"] == 1 and stats["skipped_duplicate"] == 1 and stats["used"] == 2
    from gradeset.shape import iter_dpo

    assert len(list(iter_dpo([twin(), twin()], dedup=False))) == 2
