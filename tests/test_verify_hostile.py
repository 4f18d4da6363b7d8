"""1 MB hostile completions (issue 12.4) graded in-process give the right verdict.

No timing assertions here (timings are in ``benchmarks/verify_hostile_bench.py``); the
pytest-timeout marker only stops a quadratic regression from hanging the suite: each of
these patterns took from 18 s to over a minute before extraction became linear.
"""

from __future__ import annotations

import pytest

from gradeset.verify import get_verifier

SIZE = 1_000_000


def _rep(unit: str, tail: str = "") -> str:
    return unit * (SIZE // len(unit)) + tail


# name -> (completion, whether it ends in a real answer "5")
CASES = {
    "answer+200 spaces+!": (_rep("answer" + " " * 200 + "!"), False),
    "8k-style nested unclosed boxes": (_rep("\\boxed{"), False),
    "nested closed boxes": (_rep("\\boxed{", "1") + "}" * (SIZE // 7), False),
    "nested parentheses": ("\\boxed{" + "(" * (SIZE // 2) + "1" + ")" * (SIZE // 2) + "}", False),
    "60 nested parentheses": ("The answer is \\boxed{" + "(" * 60 + "x+1" + ")" * 60 + "}", False),
    "text with a million spaces": ("\\boxed{7\\text{" + " " * SIZE + "}}", False),
    "nested braces": ("\\boxed{" + "{" * (SIZE // 2) + "1" + "}" * (SIZE // 2) + "}", False),
    "digits": ("The answer is " + "9" * SIZE, False),
    "digits and commas": ("The total is " + _rep("1,"), False),
    "dollar signs": (_rep("$"), False),
    "unicode roots": (_rep("√("), False),
    "list markers": (_rep("1.\n2.\n"), False),
    "spaces then a box": (" " * SIZE + "The answer is \\boxed{5}", True),
    "chat end tokens then a box": (_rep("</s>", "The answer is \\boxed{5}"), True),
    "reasoning then a box": (_rep("we add 2 and 3, ") + "so the answer is \\boxed{5}.", True),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("task", ["math", "gsm8k", "trivia"])
@pytest.mark.parametrize("name", list(CASES))
def test_one_megabyte_hostile_text_gets_the_right_verdict(name, task):
    text, ends_in_answer = CASES[name]
    got = get_verifier(task)(text, "5")
    assert got.correct is ends_in_answer, (name, task, got.parsed if got.parsed is None else got.parsed[:80],
                                           got.detail)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CASES))
def test_one_megabyte_hostile_text_mcq(name):
    text, _ = CASES[name]
    assert get_verifier("mcq")(text, "A").correct is False
    chosen = get_verifier("mcq")(text + "\n\nThe answer is (B).", "B")
    assert chosen.correct is True and chosen.parsed == "B", (name, chosen.detail)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("gold", [
    "5\\text{a" + " " * 4000 + "x",       # took 22 s through the symbolic path
    "5 m" + " " * 4000 + "1",              # 20 s
    "x" + " " * 4000 + "y",                # 15 s
    "(" * 60 + "5" + ")" * 60,
])
def test_hostile_gold_is_refused_not_parsed(gold):
    """Dataset text is as hostile as model text: a gold that cannot be an answer is not compared."""
    got = get_verifier("math")("The answer is \\boxed{5}.", gold)
    assert got.correct is False and got.detail.startswith("gold"), got.detail


def test_worked_solution_as_gold_is_reduced_to_its_final_answer():
    gold = "We compute step by step. " * 30 + "Final Answer: The final answer is $28 \\%$. I hope it is correct."
    assert get_verifier("math")("\\boxed{28\\%}", gold).correct
    assert not get_verifier("math")("\\boxed{72\\%}", gold).correct


def _reference_match(text: str, i: int) -> int | None:
    """The obvious character loop the linear version replaces (escaped braces skipped)."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def test_run_based_brace_matching_agrees_with_the_character_loop():
    import random

    from gradeset.verify.extract import closing_braces

    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("{{}}ab\\ ") for _ in range(rng.randint(1, 40)))
        opens = [i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] != "\\")]
        if "\\\\" in text:
            continue  # an escaped backslash before a brace: both readings exist in LaTeX, none in answers
        got = closing_braces(text, opens)
        for i in opens:
            assert got.get(i) == _reference_match(text, i), (text, i)
