"""Augmentation: the safe arithmetic parser, difficulty variants checked by recomputation, paraphrases."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import orjson
import pytest

from gradeset.cli import main
from gradeset.records import new_group
from gradeset.sources.arith_parse import ParseError, parse_question, render_question
from gradeset.sources.augment import (
    arithmetic_variants,
    check_paraphrase,
    clean_paraphrase,
    make_variant,
    paraphrase_groups,
)


def _rows(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


SEED002 = [  # every question shape seed 002 writes, with its answer
    ("79-7=?", 72), ("49+51=?", 100), ("6*7=?", 42), ("84/7=?", 12),
    ("x-49=51,x=?", 100), ("x+55=95,x=?", 40), ("55+x=95,x=?", 40), ("95-x=55,x=?", 40),
    ("x/7=6,x=?", 42), ("7*x=42,x=?", 6), ("x*7=42,x=?", 6), ("42/x=7,x=?", 6), ("x+30=10,x=?", -20),
]


@pytest.mark.parametrize("question, answer", SEED002)
def test_parser_solves_every_seed002_shape(question, answer):
    q = parse_question(question)
    assert q.answer == answer
    assert render_question(q) == question  # round trip keeps the surface form


def test_parser_keeps_prefixes_and_spacing_variants():
    q = parse_question("Solve for x: 2x + 5 = 15")
    assert q.prefix == "Solve for x: " and q.answer == 5
    assert parse_question("What is 3 × (4 - 6)=?").answer == -6
    assert parse_question("12/8=?").answer == Fraction(3, 2)


@pytest.mark.parametrize("text, needle", [
    ("__import__('os').system('ls')=?", "not an arithmetic"), ("9**9**9=?", "unexpected"),
    ("2^10=?", "not an arithmetic"), ("1/0=?", "division by zero"), ("x+x=4,x=?", "exactly once"),
    ("(" * 300 + "1" + ")" * 300 + "=?", "longer than"), ("1" * 40 + "+1=?", "digits"),
    ("((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))=?", "deeply"),
    ("hello world", "not an arithmetic"), ("x=?", "not an arithmetic"),
])
def test_parser_refuses_anything_else(text, needle):
    with pytest.raises(ParseError, match=needle):
        _ = parse_question(text).answer


def _holds(text: str, answer) -> bool:
    """An independent check with our own tiny evaluator: the answer satisfies the question."""
    body = text.removesuffix(",x=?").removesuffix("=?")
    value = Fraction(answer)
    if "=" not in body:
        return _eval(body) == value
    left, right = body.split("=")
    return _eval(left.replace("x", f"({value})")) == _eval(right.replace("x", f"({value})"))


def _eval(expr: str) -> Fraction:
    tokens = re.findall(r"\d+|[-+*/()]", expr)
    pos = 0

    def atom():
        nonlocal pos
        t = tokens[pos]
        pos += 1
        if t == "(":
            v = add()
            pos += 1
            return v
        if t == "-":
            return -atom()
        return Fraction(int(t))

    def mul():
        nonlocal pos
        v = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            w = atom()
            v = v * w if op == "*" else v / w
        return v

    def add():
        nonlocal pos
        v = mul()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            w = mul()
            v = v + w if op == "+" else v - w
        return v

    return add()


@pytest.mark.parametrize("kind", ["bigger-numbers", "more-steps", "smaller-numbers", "bigger-numbers+more-steps"])
def test_variants_have_exact_recomputed_answers(kind):
    rng = random.Random(0)
    made = 0
    for question, answer in SEED002:
        g = new_group(question, answer)
        variants, failed, bad = arithmetic_variants(g, [kind], seed=rng.randint(0, 10**6))
        assert bad is None
        for v in variants:
            made += 1
            assert v["augmentation"] == kind and v["original_id"] == g["id"]
            assert v["difficulty"] == ("easy" if kind == "smaller-numbers" else "hard")
            assert _holds(v["prompt"], v["answer"]), v["prompt"]
            assert v["prompt"] != question
            if kind.startswith("bigger"):
                nums = [int(n) for n in re.findall(r"\d+", v["prompt"])]
                assert max(nums) >= 100 or max(nums) > max(int(n) for n in re.findall(r"\d+", question))
            if kind == "more-steps":
                ops = len(re.findall(r"(?<=[\dx)])[-+*/]", v["prompt"]))
                assert ops == len(re.findall(r"(?<=[\dx)])[-+*/]", question)) + 1
    assert made >= len(SEED002) - 1


def test_variants_are_seeded_and_reject_wrong_gold():
    q = parse_question("x+55=95,x=?")
    a = make_variant(q, "bigger-numbers", random.Random(3))
    b = make_variant(q, "bigger-numbers", random.Random(3))
    assert render_question(a[0]) == render_question(b[0]) and a[1] == b[1]
    _, _, bad = arithmetic_variants(new_group("5+3=?", 9), ["more-steps"])
    assert bad == "gold answer 9 disagrees with the recomputed 8"


def test_arithmetic_variants_cli(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps({"prompt": q, "answer": a, "category": "arith", "responses": []}) + b"\n"
                             for q, a in SEED002[:4] + [("Tell me a joke", None)]))
    out = tmp_path / "out.jsonl"
    assert main(["augment", "arithmetic-variants", str(src), "--out", str(out), "--keep-original",
                 "--easier", "smaller-numbers"]) == 0
    rows = _rows(out)
    originals = [r for r in rows if "original_id" not in r]
    variants = [r for r in rows if "original_id" in r]
    assert len(originals) == 4 and all(r["difficulty"] == "medium" for r in originals)
    assert {r["augmentation"] for r in variants} == {"bigger-numbers", "more-steps", "smaller-numbers"}
    assert all(r["category"] == "arith" and isinstance(r["answer"], int) for r in variants)
    assert all(_holds(r["prompt"], r["answer"]) for r in variants)
    rej = _rows(tmp_path / "out.jsonl.rejects.jsonl")
    assert len(rej) == 1 and "not a supported arithmetic question" in rej[0]["reason"]
    assert main(["augment", "arithmetic-variants", str(src), "--out", str(out), "--harder", "huge"]) == 2


# ---------------------------------------------------------------- paraphrase


def test_clean_and_check_paraphrase():
    assert clean_paraphrase("<think>hmm</think>\nParaphrased problem: \"Find x if x plus 55 is 95.\"") == \
        "Find x if x plus 55 is 95."
    assert clean_paraphrase("```\nWhat do 2 and 3 add to?\n```") == "What do 2 and 3 add to?"
    orig = "Natalia sold 48 clips in April and half as many in May."
    assert check_paraphrase(orig, "In April Natalia sold 48 clips, and in May half that.") is None
    assert "lost or changed number(s) 48" in check_paraphrase(orig, "Natalia sold 46 clips in April...")
    assert check_paraphrase(orig, "natalia sold 48 clips in april and half as many in may") == \
        "paraphrase is the same as the original"
    assert check_paraphrase(orig, "") == "empty paraphrase"
    assert check_paraphrase(orig, "Natalia sold 46 clips.", check_numbers=False) is None


def test_paraphrase_groups_keep_answer_and_link(tmp_path):
    groups = [new_group("Natalia sold 48 clips. How many?", "48", source="gsm8k", difficulty="easy"),
              new_group("Tom has 3 apples and eats 1. How many are left?", "2")]
    replies = {groups[0]["prompt"]: ["How many clips did Natalia sell, given she sold 48?", "Sold: 48 clips?"],
               groups[1]["prompt"]: ["Tom eats an apple.", "Tom eats an apple."]}
    calls = []

    def complete(prompts):
        calls.append(len(prompts))
        out = []
        for p in prompts:
            original = p.split("Problem:\n", 1)[1].split("\n\n(Rewrite")[0]
            out.append(replies[original].pop(0))
        return out

    results = list(paraphrase_groups(groups, complete, per_prompt=2))
    assert calls == [4]
    ok = [new for _, new, _, _ in results if new is not None]
    assert [n["prompt"] for n in ok] == ["How many clips did Natalia sell, given she sold 48?", "Sold: 48 clips?"]
    assert all(n["answer"] == "48" and n["original_id"] == groups[0]["id"] and n["augmentation"] == "paraphrase"
               and n["source"] == "gsm8k" and n["difficulty"] == "easy" for n in ok)
    reasons = [r for _, new, r, _ in results if new is None]
    assert reasons == ["paraphrase lost or changed number(s) 3, 1", "paraphrase lost or changed number(s) 3, 1"]


def test_paraphrase_cli_through_loopback_server(tmp_path, capsys, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")

    def reply(req):
        text = req.prompt_text.split("Problem:\n", 1)[1]
        if "eats" in text:
            return "I think the answer is 2."  # drops the numbers: rejected
        return "Rephrased: " + text.replace("How many", "What number of")

    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(g) + b"\n" for g in [
        new_group("Natalia sold 48 clips. How many?", "48"),
        new_group("Tom has 3 apples and eats 1. How many are left?", "2"),
        {"prompt": "Mary has 5 pens. How many pens?", "answer": "5", "responses": [],
         "messages_note": "kept"}]))
    out = tmp_path / "out.jsonl"
    with LoopbackServer(reply=reply) as srv:
        code = main(["augment", "paraphrase", str(src), "--out", str(out), "--backend", "openai",
                     "--model", "loop", "--base-url", srv.base_url, "--keep-original"])
    assert code == 0
    rows = _rows(out)
    new = [r for r in rows if r.get("augmentation") == "paraphrase"]
    assert [r["prompt"] for r in new] == ["Rephrased: Natalia sold 48 clips. What number of?",
                                          "Rephrased: Mary has 5 pens. What number of pens?"]
    assert new[1]["messages_note"] == "kept" and new[1]["answer"] == "5"
    assert len(rows) == 5  # 3 originals + 2 paraphrases
    rej = _rows(tmp_path / "out.jsonl.rejects.jsonl")
    assert len(rej) == 1 and "lost or changed number(s) 3, 1" in rej[0]["reason"]
    assert rej[0]["raw"] == "I think the answer is 2."
    assert "asked 3 paraphrase(s) = 2 written + 1 rejected" in capsys.readouterr().err


def test_steps_are_registered_and_add_variants():
    from gradeset.steps import build_step

    step = build_step("arithmetic_variants", {"harder": "more-steps", "seed": 1})
    batch = [new_group("x+55=95,x=?", 40), new_group("Write a poem", None)]
    out = step(batch)
    assert out[0] is batch[0] and out[2] is batch[1] and len(out) == 3
    assert out[1]["augmentation"] == "more-steps" and _holds(out[1]["prompt"], out[1]["answer"])
    assert step.stats == {"variants": 1, "not_arithmetic": 1, "variant_failed": 0}
    with pytest.raises(Exception, match="unknown variant kind"):
        build_step("arithmetic_variants", {"harder": "weird"})


def test_paraphrase_step_through_loopback_server(monkeypatch):
    from loopback_server import LoopbackServer

    from gradeset.steps import build_step

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with LoopbackServer(reply="Which number is 7 plus 5?") as srv:
        step = build_step("paraphrase", {"backend": "openai", "model": "m", "base_url": srv.base_url})
        out = step([new_group("What is 7+5?", "12"), new_group("What is 2+2?", "4")])
    assert [g["prompt"] for g in out] == ["What is 7+5?", "Which number is 7 plus 5?", "What is 2+2?"]
    assert out[1]["answer"] == "12" and step.stats == {"paraphrases": 1, "rejected": 1}


def test_parser_agrees_with_the_synth_source_on_its_question_space():
    from gradeset.sources import arithmetic
    sp = arithmetic.space()
    checked = 0
    for i in range(0, len(sp.question), 7):
        assert parse_question(sp.question[i]).answer == sp.answer[i], sp.question[i]
        checked += 1
    assert checked > 7000
    for i in range(0, len(sp.question), 211):
        g = new_group(sp.question[i], sp.answer[i])
        variants, _, bad = arithmetic_variants(g, ["bigger-numbers", "more-steps"], seed=i)
        assert bad is None and variants
        assert all(_holds(v["prompt"], v["answer"]) for v in variants)
