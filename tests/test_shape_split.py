"""Split by prompt (stratified, reproducible), batching strategies, filter and sample steps."""

from __future__ import annotations

import pytest

from gradeset.records import new_group
from gradeset.shape.batch import (
    dynamic_batches,
    estimate_tokens,
    load_counter,
    static_batches,
    stratified_batches,
)
from gradeset.shape.scoring import ShapeError
from gradeset.shape.select import FilterStep, SampleStep
from gradeset.shape.split import parse_ratios, split_groups, split_key, streaming_assign


def corpus(n=200):
    gs = []
    for i in range(n):
        diff = ("easy", "medium", "hard")[i % 3]
        gs.append(new_group(f"Question number {i}?", str(i), difficulty=diff, task="math" if i % 2 else "code"))
    # the same prompt again with another answer/source must follow its twin
    gs += [new_group("question  NUMBER 5?", "other", source="b", difficulty="hard")]
    return gs


def test_exact_split_is_stratified_and_keeps_prompts_together():
    out = split_groups(corpus(), parse_ratios(valid=0.1, test=0.1), seed=1, stratify="difficulty")
    assert sum(len(v) for v in out.values()) == 201
    where = {}
    for name, gs in out.items():
        for g in gs:
            where.setdefault(split_key(g), set()).add(name)
    assert all(len(v) == 1 for v in where.values())
    for diff in ("easy", "medium", "hard"):
        n_valid = sum(1 for g in out["valid"] if g["difficulty"] == diff)
        n_test = sum(1 for g in out["test"] if g["difficulty"] == diff)
        assert 6 <= n_valid <= 8 and 6 <= n_test <= 8, diff


def test_split_is_reproducible_and_order_free_and_seeded():
    a = split_groups(corpus(), seed=1)
    b = split_groups(list(reversed(corpus())), seed=1)
    c = split_groups(corpus(), seed=2)
    ids = {k: {g["id"] for g in v} for k, v in a.items()}
    assert ids == {k: {g["id"] for g in v} for k, v in b.items()}
    assert ids != {k: {g["id"] for g in v} for k, v in c.items()}


def test_streaming_split_matches_shares_roughly_and_is_stable():
    ratios = parse_ratios("train=0.8,valid=0.1,test=0.1")
    names = [streaming_assign(f"k{i}", ratios, 0) for i in range(5000)]
    assert 0.77 < names.count("train") / 5000 < 0.83
    assert names == [streaming_assign(f"k{i}", ratios, 0) for i in range(5000)]


def test_bad_ratios_are_clear_errors():
    for bad in ("train=0.8,valid=0.1", "train=1.2,valid=-0.2", "train"):
        with pytest.raises(ShapeError):
            parse_ratios(bad)


def test_static_and_dynamic_batches_fix_seed_bugs():
    assert [len(b) for b in static_batches(range(7), 3)] == [3, 3, 1]
    stats: dict = {}
    # seed 001 yields an empty first batch when the first item is over budget
    batches = list(dynamic_batches([({}, 9), ({}, 2), ({}, 3), ({}, 1)], 5, stats=stats))
    assert [[n for _, n in b] for b in batches] == [[9], [2, 3], [1]]
    assert all(batches) and stats["oversize"] == 1
    sorted_b = list(dynamic_batches([({}, n) for n in (4, 1, 4, 1)], 5, sort_window=4))
    assert [[n for _, n in b] for b in sorted_b] == [[1, 1], [4], [4]]
    assert estimate_tokens("one two three") == 4


def test_stratified_batches_are_full_and_mixed():
    items = [{"difficulty": d} for d in ["easy"] * 12 + ["medium"] * 6 + ["hard"] * 6]
    batches = list(stratified_batches(items, 8))
    assert [len(b) for b in batches] == [8, 8, 8]  # the seed's loop yields batches of 3
    for b in batches:
        assert [x["difficulty"] for x in b].count("easy") == 4


def test_real_tokenizer_counts(tiny_model_dir):
    count = load_counter(tiny_model_dir)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "What is 2+3? The answer is 5."
    assert count(text) == len(tok(text, add_special_tokens=False)["input_ids"])
    with pytest.raises(Exception, match="not found"):
        load_counter("/nonexistent/tokenizer")


def test_filter_and_sample_steps():
    def G(p, flags):
        return new_group(p, responses=[{"text": str(i), "correct": f} for i, f in enumerate(flags)], task="math")

    gs = [G("a", [True, True]), G("b", [True, False]), G("c", [False, False]), new_group("d")]
    f = FilterStep(min_pass_rate=0.1, max_pass_rate=0.9)
    assert [g["prompt"] for g in f(gs)] == ["b"]
    assert f.stats["dropped_ungraded"] == 1 and f.stats["dropped_above-pass-rate"] == 1
    assert [g["prompt"] for g in FilterStep(buckets="all-wrong,ungraded")(gs)] == ["c", "d"]
    many = [new_group(f"p{i}") for i in range(1000)]
    half = SampleStep(fraction=0.5, seed=1)(many)
    assert 420 < len(half) < 580 and half == SampleStep(fraction=0.5, seed=1)(many)
    exact = [g for b in SampleStep(n=10, seed=1).process(iter([many[:500], many[500:]])) for g in b]
    assert len(exact) == 10
    with pytest.raises(Exception, match="whole stream"):
        SampleStep(n=10)(many)


def test_registered_steps_build_from_plain_params(tmp_path):
    from gradeset.steps import build_step

    bench = tmp_path / "b.jsonl"
    bench.write_text('{"question": "1+1=?"}\n')
    gs = [new_group("1+1=?"), new_group("1 + 1 = ?"), new_group("2+2=?", responses=[{"text": "4", "correct": True}])]
    assert [g["prompt"] for g in build_step("dedup", {})(gs)] == ["1+1=?", "2+2=?"]
    assert [g["prompt"] for g in build_step("decontaminate", {"benchmarks": [str(bench)]})(gs)] == ["2+2=?"]
    assert [g["prompt"] for g in build_step("filter", {"buckets": ["all-correct"]})(gs)] == ["2+2=?"]
    assert len(build_step("sample", {"fraction": 1.0})(gs)) == 3
    with pytest.raises(Exception, match="bad parameters"):
        build_step("balance", {"caps": 3})
