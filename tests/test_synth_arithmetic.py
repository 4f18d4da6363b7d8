"""`gradeset synth arithmetic`: seed 002's question space, dedup, clean test split, verified negatives."""

from __future__ import annotations

import re
from collections import Counter

import orjson
import pytest

from gradeset.cli import main
from gradeset.formats import read_groups
from gradeset.sources import arithmetic as arith


def _solve(question: str) -> int:
    """An independent solver for the seed's question forms (integer arithmetic only)."""
    m = re.fullmatch(r"(\d+)([-+*/])(\d+)=\?", question)
    if m:
        a, op, b = int(m[1]), m[2], int(m[3])
        return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
    m = re.fullmatch(r"(.+?)([-+*/])(.+?)=(\d+),x=\?", question)
    assert m, question
    left, op, right, c = m[1], m[2], m[3], int(m[4])
    for x in range(-200, 201):
        a = x if left == "x" else int(left)
        b = x if right == "x" else int(right)
        if op == "/" and (b == 0 or a % b):
            continue
        if {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else None}[op] == c:
            return x
    raise AssertionError(f"no solution for {question}")


def test_question_space_matches_the_seed_rules():
    sp = arith.space()
    assert len(sp) == arith.DISTINCT_PROMPTS == 52_792
    assert len(set(sp.question)) == len(sp)  # every question once
    assert Counter(sp.op) == {"+": 9_900, "-": 40_000, "*": 964, "/": 1_928}
    assert set(sp.form) == {"direct", "x-a=b", "x+b=a", "b+x=a", "a-x=b", "x/b=a", "b*x=a", "x*b=a", "a/x=b"}
    for i in range(0, len(sp), 37):  # every 37th item: answers checked by an independent solver
        assert _solve(sp.question[i]) == sp.answer[i], sp.question[i]
        assert -100 <= sp.answer[i] <= 100
    div = [i for i in range(len(sp)) if sp.op[i] == "/" and sp.form[i] == "direct"]
    assert all(sp.a[i] % sp.b[i] == 0 and sp.a[i] <= 100 for i in div)  # the seed rounds a down to a multiple


def test_default_is_deduplicated_capped_with_a_note_and_test_is_held_out(tmp_path, capsys):
    out, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    assert main(["synth", "arithmetic", "--out", str(out), "--test-out", str(test)]) == 0
    err = capsys.readouterr().err
    assert "52,792 distinct questions" in err and "52,392 training rows" in err
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    tests = [orjson.loads(x) for x in test.read_bytes().splitlines()]
    assert len(rows) == 52_392 and len(tests) == 400
    prompts = [r["positive"].split(" The answer is")[0] for r in rows]
    assert len(set(prompts)) == len(prompts)
    assert not set(prompts) & {t["question"] for t in tests}
    assert all(r["negative"] == "Sorry, I don't know." for r in rows)
    assert all(isinstance(t["answer"], int) and _solve(t["question"]) == t["answer"] for t in tests)
    # the seed's own layout: re-imports with the seed's prompt rule and answers
    groups = list(read_groups(out))
    assert {g["prompt_rule"] for g in groups} == {"answer-marker"} and len(groups) == len(rows)


def test_reproducible_and_seed_dependent(tmp_path):
    a, b, c = (tmp_path / f"{k}.jsonl" for k in "abc")
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert main(["synth", "arithmetic", "--out", str(path), "--n", "500", "--seed", seed,
                     "--negatives", "mixed"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_wrong_answer_negatives_are_plausible_and_verified_wrong():
    res = arith.sample(3000, seed=3, negatives="wrong-answer")
    sp = arith.space()
    kinds = Counter()
    for i, u in zip(res.train, res.negatives):
        kind, text, wrong = arith.negative_of(sp, i, u)
        kinds[kind] += 1
        assert wrong is not None and wrong != sp.answer[i] and wrong != _solve(sp.question[i])
        assert text == f"The answer is {wrong} because {text.split(' because ', 1)[1]}"
        if kind == "off-by-one":
            assert abs(wrong - sp.answer[i]) == 1
        elif kind == "sign-flip":
            assert wrong == -sp.answer[i]
    assert set(kinds) == {"off-by-one", "sign-flip", "operator-slip"}


def test_wrong_answers_are_graded_wrong_by_the_math_verifier():
    from gradeset import verify
    check = verify.get_verifier("math")
    train, _ = arith.generate(60, seed=5, negatives="wrong-answer", test_n=10)
    for g in train:
        pos, neg = g["responses"]
        assert check(pos["text"], g["answer"]).correct is True
        assert check(neg["text"], g["answer"]).correct is False


def test_mixed_is_about_half_refusals():
    res = arith.sample(4000, seed=0, negatives="mixed")
    share = sum(1 for u in res.negatives if u < 0) / len(res.negatives)
    assert 0.45 < share < 0.55


def test_allow_duplicates_restores_the_seed_sampling(tmp_path):
    res = arith.sample(20_000, seed=0, allow_duplicates=True, test_n=400)
    sp = arith.space()
    assert 20_000 <= len(res.train) <= 20_008
    assert len(set(res.train)) < len(res.train) * 0.9  # repeats, as in the seed
    per_op = Counter(sp.op[i] for i in res.train)
    assert all(abs(v - 5_000) <= 2 for v in per_op.values())  # 100k per operator in the seed: n/4 here
    assert not set(res.train) & set(res.test)  # but the test stays unseen
    # within an operator the seed writes a draw's rows together: direct question, then its find-x forms
    first = [sp.form[i] for i in res.train[:4]]
    assert first == ["direct", "x-a=b", "direct", "x-a=b"]


def test_group_and_trl_dpo_layouts(tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    assert main(["synth", "arithmetic", "--out", str(out), "--n", "50", "--layout", "group",
                 "--negatives", "wrong-answer"]) == 0
    groups = list(read_groups(out))
    g = groups[0]
    assert g["task"] == "math" and g["source"] == "synth:arithmetic" and len(groups) == 50
    assert [r["score"] for r in g["responses"]] == [1.0, 0.0] and g["responses"][0]["parsed"] == str(g["answer"])
    dpo = tmp_path / "d.parquet"
    assert main(["synth", "arithmetic", "--out", str(dpo), "--n", "20", "--layout", "trl-dpo"]) == 0
    import pyarrow.parquet as pq

    rows = pq.read_table(dpo).to_pylist()
    assert len(rows) == 20 and rows[0]["rejected"] == "Sorry, I don't know."
    assert rows[0]["chosen"].startswith("The answer is")


def test_pipeline_source_writes_its_test_file(tmp_path):
    test = tmp_path / "t.jsonl"
    train, tests = arith.synth_groups(n=100, seed=1, test_n=20, test_out=str(test))
    assert len(train) == 100 and len(tests) == 20
    assert [orjson.loads(x)["question"] for x in test.read_bytes().splitlines()] == [g["prompt"] for g in tests]
    assert not {g["prompt"] for g in train} & {g["prompt"] for g in tests}


def test_bad_options_are_clear(tmp_path, capsys):
    assert main(["synth", "arithmetic", "--out", str(tmp_path / "x.jsonl"), "--n", "-1"]) == 2
    with pytest.raises(ValueError, match="negatives must be one of"):
        arith.sample(10, negatives="nonsense")


def test_group_layout_converts_to_the_same_seed002_rows(tmp_path, capsys):
    """synth --layout group, then convert --to seed002, gives what synth --layout seed002 writes."""
    g, s, c = tmp_path / "g.jsonl", tmp_path / "s.jsonl", tmp_path / "c.jsonl"
    for out, layout in ((g, "group"), (s, "seed002")):
        assert main(["synth", "arithmetic", "--out", str(out), "--n", "300", "--layout", layout,
                     "--negatives", "mixed", "--seed", "4"]) == 0
    assert main(["convert", str(g), str(c), "--to", "seed002"]) == 0
    pick = [("positive", "negative")]
    conv = [{k: r[k] for k in pick[0]} for r in map(orjson.loads, c.read_bytes().splitlines())]
    assert conv == [orjson.loads(x) for x in s.read_bytes().splitlines()]


def _ops_of(question: str) -> set[str]:
    return {c for c in question.split(",")[0] if c in "+-*/"}


def test_operators_subset_narrows_train_and_test_alike(tmp_path, capsys):
    """The embedded model learns + and - only; its held-out file must be the same kind."""
    res = arith.sample(60_000, seed=3, negatives="wrong-answer", test_n=100, operators="+-")
    sp = arith.space()
    ops = Counter(sp.op[i] for i in res.train)
    assert set(ops) == {"+", "-"} and set(Counter(sp.op[i] for i in res.test)) == {"+", "-"}
    assert Counter(sp.op[i] for i in res.test) == {"+": 50, "-": 50}  # test spread evenly, as the seed does
    assert len(res.train) == ops["+"] + ops["-"] == 9900 + 40000 - 100  # every +/- question not held out
    assert not set(res.train) & set(res.test)
    assert "2 operator(s) +-" in res.notes[0]
    # every operator named is the same as naming none (the draws stay those of earlier releases)
    assert arith.sample(500, seed=3, operators="+,-,*,/").train == arith.sample(500, seed=3).train
    dup = arith.sample(2000, seed=3, allow_duplicates=True, operators=["*"])
    assert {sp.op[i] for i in dup.train} == {"*"}
    # the CLI and the pipeline source take it too
    out = tmp_path / "t.jsonl"
    assert main(["synth", "arithmetic", "--out", str(out), "--n", "50", "--operators", "-", "--layout", "group"]) == 0
    assert all(_ops_of(g["prompt"]) <= {"-", "+"} and g["prompt"].count("*") == 0 for g in read_groups(out))
    train, _ = arith.synth_groups(n=40, seed=1, operators="*/")
    assert all(_ops_of(g["prompt"]) <= {"*", "/"} for g in train)
    assert main(["synth", "arithmetic", "--out", str(out), "--n", "5", "--operators", "+^"]) == 2
    assert "unknown operator(s) ^" in capsys.readouterr().err
