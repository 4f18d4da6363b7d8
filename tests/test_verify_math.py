"""The math verifier: math-verify's own test rows replayed, the fast path, truncation, hostile input."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from gradeset.verify import Verdict, get_verifier
from gradeset.verify.maths import MathVerifier
from gradeset.verify.normalize import canonical, equal

CASES = Path(__file__).parent / "data" / "verify" / "math_verify_cases.jsonl"


def _rows():
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _verifier(opts: dict) -> MathVerifier:
    return MathVerifier(precision=opts["precision"], strict=opts["strict"],
                        allow_set_relation_comp=opts["allow_set_relation_comp"],
                        decimal_comma=opts["targets"] == ["expr"])


def test_math_verify_suite_replayed_with_at_least_its_pass_count():
    """Rows copied from Math-Verify's tests/ (gold, prediction, expected, per-test config).

    ``expected`` is what math-verify's tests assert. Where that is not the mathematically
    right verdict the row carries ``right`` and ``why``; both tools are scored against
    the right verdict. math-verify passes every row except those (it was recorded by
    running its suite: all passed), so its pass count is ``rows - disagreements``.
    """
    rows = _rows()
    assert len(rows) >= 256
    documented = [r for r in rows if "right" in r]
    assert all(r["why"] and r["right"] != r["expected"] for r in documented)
    math_verify_passes = sum(r.get("right", r["expected"]) == r["expected"] for r in rows)
    failures, misses = [], []
    for r in rows:
        got = _verifier(r["options"])(r["pred"], r["gold"])
        if int(got.correct) != r.get("right", r["expected"]):
            (misses if "gradeset_miss" in r else failures).append((r["case"], r["gold"][:60], r["pred"][-80:], got))
    passes = len(rows) - len(failures) - len(misses)
    assert passes >= math_verify_passes, failures
    assert not failures, failures
    # documented misses are real: each still fails, and says why
    assert len(misses) == sum("gradeset_miss" in r for r in rows)


@pytest.mark.parametrize("gold,pred,ok", [
    ("5", "so the answer is \\boxed{5}", True),
    ("5", "\\boxed{5.0}", True),
    ("0.5", "\\boxed{\\frac{1}{2}}", True),
    ("\\frac{1}{2}", "\\boxed{\\dfrac12}", True),
    ("1/3", "\\boxed{0.333333}", True),
    ("2\\frac{1}{2}", "\\boxed{2.5}", True),
    ("2 1/2", "\\boxed{\\frac{5}{2}}", True),
    ("50\\%", "\\boxed{50}", True),
    ("0.5", "\\boxed{50\\%}", True),
    ("1000000", "\\boxed{1,000,000}", True),
    ("12", "\\boxed{12 \\text{ cm}}", True),
    ("5", "\\boxed{5\\text{ m}}", True),
    ("2x", "\\boxed{2 x}", True),
    ("12", "\\boxed{\\$12}", True),
    ("30", "\\boxed{30^\\circ}", True),
    ("2\\sqrt{2}", "\\boxed{\\sqrt{8}}", True),
    ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\frac{1}{2}\\sqrt{3}}", True),
    ("\\frac{1}{\\sqrt{2}}", "\\boxed{\\frac{\\sqrt2}{2}}", True),
    ("2\\pi", "\\boxed{\\frac{4\\pi}{2}}", True),
    ("1024", "\\boxed{2^{10}}", True),
    ("300000", "\\boxed{3 \\times 10^{5}}", True),
    ("[0, 1)", "\\boxed{\\left[0,1\\right)}", True),
    ("(-\\infty, 3]", "\\boxed{(-\\infty, 3]}", True),
    ("\\{1, 2, 3\\}", "\\boxed{\\{3, 2, 1\\}}", True),
    ("(1, 2)", "\\boxed{(2, 1)}", False),
    ("x = 5", "\\boxed{5}", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}}", True),
    ("Monday", "\\boxed{\\text{monday}}", True),
    ("Monday", "\\boxed{\\text{Tuesday}}", False),
    ("x^2 + 2x + 1", "\\boxed{(x+1)^2}", True),
    ("5", "\\boxed{6}", False),
    ("[0, 1)", "\\boxed{[0, 1]}", False),
    ("2\\sqrt{2}", "\\boxed{2\\sqrt{3}}", False),
    ("5", "The final answer is $5$. I hope it is correct.", True),
    ("42", "reasoning...\n#### 42", True),
])
def test_equivalence(gold, pred, ok):
    v = MathVerifier()(pred, gold)
    assert v.correct is ok, v
    assert v.parsed is not None
    assert v.score == (1.0 if ok else 0.0)


def test_fast_path_decides_common_answers_without_sympy():
    """Integers, decimals, fractions, radicals, intervals and words never reach the symbolic path."""
    for a, b in [("3", "3.0"), ("\\frac{3}{4}", "0.75"), ("3\\sqrt{2}", "\\sqrt{18}"),
                 ("(0, 1]", "(0,1]"), ("\\text{blue}", "Blue"), ("-7", "-7")]:
        ca, cb = canonical(a), canonical(b)
        assert ca is not None and cb is not None, (a, b)
        assert equal(ca, cb) is True


def test_last_marker_wins_and_box_is_brace_matched():
    v = MathVerifier()
    assert v("first \\boxed{3}, then the final answer is $7$.", "7").correct
    assert v("\\boxed{\\frac{1}{\\sqrt{4}}}", "0.5").parsed == "\\frac{1}{\\sqrt{4}}"


def test_truncated_completion_is_not_graded_from_a_stray_number():
    reasoning = "Let us compute step by step. First 3 + 4 = 7, and 7 * 6 = 42, so we keep going with " * 10
    v = MathVerifier()(reasoning + "and then the next term is", "42")
    assert v.parsed is None and v.correct is False and v.score == 0.0
    assert "truncated" in v.detail
    # unclosed box at the end: also truncated, not graded from earlier numbers
    v2 = MathVerifier()(reasoning + "so the answer is \\boxed{4", "42")
    assert v2.parsed is None and not v2.correct


def test_short_completion_cut_mid_sentence_is_not_graded_from_its_last_number():
    # short texts get no length-based truncation check, but a sentence that stops on "and"
    # was cut: its last number (7) is a step, not an answer
    v = MathVerifier()("I think it is 12. Let me check: 3*4=12, then we add 7 and", "7")
    assert v.parsed is None and v.correct is False and "truncated" in v.detail
    # a finished short sentence still falls back to its last number
    assert MathVerifier()("Adding them gives 19.", "19").correct


def test_unclosed_think_block_is_unparsed():
    v = MathVerifier()("<think>the answer might be 5 but let me", "5")
    assert v.parsed is None and not v.correct


def test_unparseable_answer_is_wrong_not_an_error():
    v = MathVerifier()("\\boxed{\\frac{}{}{{}}}", "5")
    assert v.correct is False and v.score == 0.0


def test_empty_and_none_completions():
    for text in ("", None):
        v = MathVerifier()(text, "5")
        assert v.parsed is None and v.correct is False


def test_hostile_box_executes_nothing(tmp_path):
    target = tmp_path / "pwned"
    payload = f"\\boxed{{__import__('os').system('touch {target}')}}"
    v = MathVerifier()(payload, "0")
    assert v.correct is False
    assert not target.exists()
    v = MathVerifier()(f"\\boxed{{{payload[7:-1]}}}", f"__import__('os').system('touch {target}')")
    assert not target.exists()


def test_huge_power_is_refused_fast_by_the_exact_path():
    assert canonical("9^{9^{9^{9}}}") is None  # refused, not computed


def test_ten_thousand_nested_braces_are_linear():
    text = "x" + "{" * 10000 + "\\boxed{5}" + "}" * 10000
    v = MathVerifier(symbolic=False)(text, "5")
    assert v.parsed is not None and v.parsed.count("{") <= 10000


def test_list_gold_any_alias_counts():
    assert MathVerifier()("\\boxed{0.5}", ["1/3", "1/2"]).correct


def test_verifier_pickles_and_returns_verdict():
    v = pickle.loads(pickle.dumps(get_verifier("math", precision=4)))
    out = v("\\boxed{0.3333}", "1/3")
    assert isinstance(out, Verdict) and out.correct


def test_common_answers_are_graded_without_importing_sympy():
    """The speed claim in one assertion: integers, decimals, fractions, radicals, intervals,
    letters and short text never load sympy (a fresh interpreter proves it)."""
    import subprocess
    import sys

    code = r"""
import sys
from gradeset.verify import get_verifier
v = get_verifier("math")
pairs = [("42", "so \\boxed{42}"), ("0.25", "\\boxed{\\frac{1}{4}}"), ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}"),
         ("[1, 5)", "\\boxed{\\left[1,5\\right)}"), ("B", "\\boxed{B}"), ("Monday", "\\boxed{\\text{Tuesday}}"),
         ("1,000", "#### 1000"), ("x^2+2x+1", "\\boxed{(x+1)^2}"), ("3.5", "The answer is 7/2.")]
got = [v(p, g).correct for g, p in pairs]
assert got == [True, True, True, True, True, False, True, True, True], got
assert "sympy" not in sys.modules, "sympy was imported"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_answer_phrase_at_the_top_of_a_cut_completion_is_not_an_answer():
    text = "Answer: Let me think about this. " + "We try 12 and then 7 and then compute more terms of " * 12 + "the"
    v = MathVerifier()(text, "12")
    assert v.parsed is None and "truncated" in v.detail


def test_canonical_text_is_the_same_for_equal_values():
    """Others key answers by ``repr(canonical(x))`` (maj@k): equal values must print alike."""
    for a, b in [("\\{2, 1\\}", "\\{1,2\\}"), ("0.5", "\\frac12"), ("\\sqrt2 + 1", "1+\\sqrt{2}"),
                 ("x^2+2x+1", "(x+1)^2")]:
        assert repr(canonical(a)) == repr(canonical(b)), (a, b)
    assert repr(canonical("\\{1, 3\\}")) != repr(canonical("\\{1, 2\\}"))


def test_empty_box_is_unparsed():
    v = MathVerifier()("so the answer is \\boxed{}", "5")
    assert v.parsed is None and not v.correct and v.detail == "empty answer"


def test_markdown_emphasis_and_colon_after_the_phrase_are_not_the_answer():
    v = MathVerifier()
    assert v("The answer is: **42**.", "42").parsed == "42"
    assert v("**Final Answer:** 42", "42").correct
    assert v("So the final answer is *7*", "7").correct
    assert not v("The answer is: **41**.", "42").correct


def test_hostile_gold_from_a_dataset_is_never_evaluated(tmp_path):
    # a downloaded dataset is someone else's text too: golds never reach Python's expression parser
    target = tmp_path / "pwned"
    for gold in (f"__import__('os').system('touch {target}')", f"open('{target}', 'w')",
                 "exit()", f"(lambda: open('{target}', 'w'))()"):
        v = MathVerifier()("\\boxed{1}", gold)
        assert v.correct is False
    assert not target.exists()
    # plain math golds still get the expression parser
    assert MathVerifier()("\\boxed{\\frac{x^2}{2}}", "x^2/2").correct
