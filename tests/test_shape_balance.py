"""Seed 003's balance: buckets, caps, per-prompt sampling, merge order independence."""

from __future__ import annotations

import pytest

from gradeset.records import new_group
from gradeset.shape.balance import BalanceStep, balance, bucket_of, format_table, parse_caps
from gradeset.shape.scoring import ShapeError
from gradeset.steps import build_step


def G(i, pattern, task="math"):
    """A group whose responses follow pattern: 'r' correct, 'w' wrong."""
    rs = [{"text": f"{c}{j}", "score": 1.0 if c == "r" else 0.0, "correct": c == "r"} for j, c in enumerate(pattern)]
    return new_group(f"question {task} {i}", str(i), task=task, responses=rs)


def corpus():
    return ([G(i, "rrrr") for i in range(10)] + [G(i, "wwww") for i in range(10, 15)]
            + [G(i, "rrww") for i in range(15, 20)] + [G(i, "rw", task="trivia") for i in range(6)])


def test_buckets_follow_correctness_and_scores():
    assert [bucket_of(G(0, p)) for p in ("rr", "ww", "rw", "")] == ["all-correct", "all-wrong", "mixed", "ungraded"]
    scored = new_group("q", responses=[{"text": "a", "score": 1.0}, {"text": "b", "score": 0.3}])
    assert bucket_of(scored) == "mixed"


def test_bucket_caps_apply_per_task_and_are_order_independent():
    groups = corpus()
    out, bal = balance(groups, bucket_caps="all-correct=3,all-wrong=0")
    counts = {}
    for g in out:
        counts[(g["task"], bucket_of(g))] = counts.get((g["task"], bucket_of(g)), 0) + 1
    assert counts == {("math", "all-correct"): 3, ("math", "mixed"): 5, ("trivia", "mixed"): 6}
    assert bal.stats["dropped_bucket_cap"] == 7 + 5
    rev, _ = balance(list(reversed(corpus())), bucket_caps="all-correct=3,all-wrong=0")
    assert {g["id"] for g in rev} == {g["id"] for g in out}
    picks = {frozenset(g["id"] for g in balance(corpus(), bucket_caps="all-correct=3", seed=s)[0]) for s in range(5)}
    assert len(picks) > 1  # the seed changes which groups a cap keeps
    # uncapped groups stream through first; the capped survivors follow in input order
    idx = {g["id"]: i for i, g in enumerate(groups)}
    assert [bucket_of(g) for g in out][-3:] == ["all-correct"] * 3
    assert [idx[g["id"]] for g in out[-3:]] == sorted(idx[g["id"]] for g in out[-3:])
    assert [idx[g["id"]] for g in out[:-3]] == sorted(idx[g["id"]] for g in out[:-3])


def test_task_row_caps_and_group_caps():
    out, bal = balance(corpus(), task_row_caps="math=20")
    math_rows = sum(len(g["responses"]) for g in out if g["task"] == "math")
    assert math_rows == 20  # five groups of four rows
    assert sum(1 for g in out if g["task"] == "trivia") == 6  # uncapped task untouched
    out, _ = balance(corpus(), task_caps="*=2")
    assert sorted(g["task"] for g in out) == ["math", "math", "trivia", "trivia"]


def test_per_prompt_downsample_keeps_both_kinds_and_upsample_marks_copies():
    g = G(1, "rrrrrrw")
    out, bal = balance([g], per_prompt=2)
    assert sorted(r["correct"] for r in out[0]["responses"]) == [False, True]
    assert bal.stats["responses_downsampled"] == 5
    out, bal = balance([G(2, "rw")], per_prompt=5, upsample=True)
    rs = out[0]["responses"]
    assert len(rs) == 5 and sum(1 for r in rs if r.get("meta", {}).get("upsampled")) == 3
    out, _ = balance([G(3, "rrww")], keep="correct")
    assert [r["correct"] for r in out[0]["responses"]] == [True, True]
    out, bal = balance([G(4, "ww")], keep="correct")
    assert out == [] and bal.stats["dropped_no_kept_responses"] == 1


def test_table_reports_before_and_after():
    _, bal = balance(corpus(), drop_buckets="all-wrong")
    table = format_table(bal.before, bal.after)
    line = next(ln for ln in table.splitlines() if "all-wrong" in ln)
    assert line.split()[-4:] == ["5", "20", "0", "0"]
    assert table.splitlines()[-1].split() == ["total", "26", "92", "21", "72"]


def test_bad_caps_are_clear_errors():
    for bad in ("mixed", "mixed=x", "mixed=-1"):
        with pytest.raises(ShapeError):
            parse_caps(bad)
    with pytest.raises(ShapeError, match="unknown bucket"):
        balance([], bucket_caps="some=3")
    with pytest.raises(ShapeError):
        balance([], upsample=True)


def test_balance_step_streams_through_process():
    step = build_step("balance", {"bucket_caps": {"all-correct": 2}})
    assert isinstance(step, BalanceStep)
    batches = [corpus()[:12], corpus()[12:]]
    out = [g for b in step.process(iter(batches)) for g in b]
    assert sum(1 for g in out if bucket_of(g) == "all-correct") == 2
    assert step.stats["groups_in"] == len(corpus())
    import pickle

    assert pickle.loads(pickle.dumps(step)).config.bucket_caps == {"all-correct": 2}


def test_bucket_ratios_give_the_largest_mix_the_data_allows():
    from gradeset.shape.balance import ratio_caps

    assert ratio_caps({"mixed": 5, "all-correct": 10, "all-wrong": 5}, {"mixed": 1, "all-correct": 1}) == {
        "mixed": 5, "all-correct": 5}
    assert ratio_caps({"mixed": 3, "all-correct": 10}, {"mixed": 1, "all-correct": 2, "all-wrong": 0}) == {
        "mixed": 3, "all-correct": 6, "all-wrong": 0}
    assert ratio_caps({"mixed": 4}, {"mixed": 1, "all-correct": 1}) == {"mixed": 4}  # missing bucket ignored
    out, bal = balance(corpus(), bucket_ratios="mixed=1,all-correct=1,all-wrong=0")
    math = [bucket_of(g) for g in out if g["task"] == "math"]
    assert math.count("mixed") == 5 and math.count("all-correct") == 5 and "all-wrong" not in math
    assert bal.stats["dropped_bucket_ratio"] == 5 + 5
    assert sum(1 for g in out if g["task"] == "trivia") == 6  # trivia has only mixed: nothing to trim
    with pytest.raises(ShapeError):
        balance([], bucket_ratios="mixed=x")
