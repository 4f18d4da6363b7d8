"""The comparison side of the math grader: exact rules, rewrites, rounding, the judge cascade, the audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradeset.cli import main
from gradeset.verify import verify_groups
from gradeset.verify.cascade import parse_yes_no, too_large
from gradeset.verify.expressions import decide, parse_expr, ratios_equal
from gradeset.verify.maths import MathVerifier
from gradeset.verify.numbers import close
from gradeset.verify.rewrite import rewrite
from gradeset.verify.verdict import Asked

DATA = Path(__file__).parent / "data" / "verify"


def _v(gold, answer, question=""):
    return MathVerifier()(f"Work.\n\nThe final answer is $\\boxed{{{answer}}}$.", Asked(gold, question))


@pytest.mark.parametrize("gold,answer,ok", [
    # tiny numbers: relative tolerance, not rounding to 6 places
    ("3.1\\times10^{-8}", "3.4\\times10^{-8}", False),
    ("3.1\\times10^{-8}", "3.1\\times 10^{-8}", True),
    ("0.0000031", "0.0000034", False),
    ("1/3", "0.333333", True),
    # big exponents: exact big rationals, never floats
    ("\\frac{1}{3^{70}}", "\\frac{1}{3^{71}}", False),
    ("\\frac{1}{3^{70}}", "3^{-70}", True),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", False),
    ("2^{1000}", "2^{1000}+1", False),
    # inequalities and set-builder for intervals
    ("[1,7)", "1\\le x<7", True),
    ("[1,7)", "1< x<7", False),
    ("(-3,2)", "-3<x<2", True),
    ("(-\\infty,-2)\\cup(5,\\infty)", "x<-2 \\text{ or } x>5", True),
    ("(-\\infty,-2)\\cup(5,\\infty)", "x<-2 \\text{ or } x>6", False),
    ("(0,3)", "\\{x \\mid 0<x<3\\}", True),
    ("(-\\infty, 3)", "x<3", True),
    ("[2,\\infty)", "x \\geq 2", True),
    ("(a, 2a]", "a < x \\le 2a", True),
    # vectors, angles, trig values, ordinals, units after pi
    ("(1,2,3)", "\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", True),
    ("(1,2,3)", "\\begin{pmatrix}1\\\\2\\\\4\\end{pmatrix}", False),
    ("30.25^\\circ", "30^\\circ 15'", True),
    ("30.25^\\circ", "30^\\circ 20'", False),
    ("\\frac{\\sqrt{3}}{2}", "\\sin 60^\\circ", True),
    ("\\frac{\\sqrt{3}}{2}", "\\cos 60^\\circ", False),
    ("-1", "\\cos \\pi", True),
    ("12", "12^{\\text{th}}", True),
    ("13\\pi", "13\\pi \\text{ m}^2", True),
    ("13", "13\\pi \\text{ m}^2", False),
    # functions, prefixes, labelled parts
    ("f(n)=2n+c", "f(m)=2m+c", True),
    ("f(n)=2n+c", "f(m)=3m+c", False),
    ("2x+1", "y=2x+1", True),
    ("y=2x+1", "f(x)=2x+1", True),
    ("2, 9", "\\text{Minimum: } 2, \\text{Maximum: } 9", True),
    ("2, 9", "\\text{Minimum: } 2, \\text{Maximum: } 8", False),
    ("12, 7", "\\text{Anna: } 12, \\text{Ben: } 7", True),
    # plus-minus and "or" lists of solutions
    ("\\pm 3", "3, -3", True),
    ("\\pm 3", "3", False),
    ("1\\pm\\sqrt{2}", "1-\\sqrt{2}, 1+\\sqrt{2}", True),
    ("1, 4", "x = 1 \\text{ or } x = 4", True),
    ("1, 4", "x = 1 \\text{ or } x = 5", False),
    # competition-style expressions, tuples, equations
    ("x^2+2xy+y^2", "(x+y)^2", True),
    ("x^2+2xy+y^2", "(x-y)^2", False),
    ("\\frac{x+1}{x-1}", "\\frac{2x+2}{2x-2}", True),
    ("\\frac{x+1}{x-1}", "\\frac{x-1}{x+1}", False),
    ("(\\frac{1}{2}, -3)", "(0.5, -3)", True),
    ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}", True),
    ("3x-y+13=0", "3x+4y+14=0", False),
])
def test_comparison_classes(gold, answer, ok):
    assert _v(gold, answer).correct is ok


def test_rounded_answers_need_a_question_that_asks_for_rounding():
    q = "Round your answer to the nearest hundredth."
    assert _v("\\sqrt{2}", "1.41", q).correct
    assert not _v("\\sqrt{2}", "1.42", q).correct
    assert not _v("\\sqrt{2}", "1.4", q).correct  # fewer places than asked
    assert not _v("\\sqrt{2}", "1.41", "Find the exact length.").correct
    assert not _v("\\sqrt{2}", "1.41").correct
    assert _v("12.6", "13", "Round to the nearest whole number.").correct
    assert _v("\\frac{1}{3}", "0.33", "Give your answer to 2 decimal places.").correct


def test_exact_path_decides_hard_answers_without_sympy(monkeypatch):
    import gradeset.verify.symbolic as symbolic

    def boom(*a, **k):
        raise AssertionError("the symbolic path was used")

    monkeypatch.setattr(symbolic, "parse_gold", boom)
    monkeypatch.setattr(symbolic, "parse_answer", boom)
    v = MathVerifier()
    for gold, ans, ok in [("x^3-y^3", "(x-y)(x^2+xy+y^2)", True), ("\\{(1,2), (3,4)\\}", "\\{(3,4),(1,2)\\}", True),
                          ("(a+b)^2", "a^2+b^2", False), ("\\frac{1}{x}+\\frac{1}{y}", "\\frac{x+y}{xy}", True),
                          ("[a, a+1)", "a\\le x<a+1", True)]:
        out = v.compare(ans, gold)
        assert (out.correct, out.path) == (ok, "exact"), (gold, ans)


def test_building_blocks():
    assert close(0.333333, 1 / 3) and not close(3.1e-8, 3.4e-8) and not close(1000000.5, 1000003.0)
    assert ratios_equal(parse_expr("\\frac{x^2-1}{x-1}"), parse_expr("x+1"))
    assert parse_expr("9^{9^{9^{9}}}") is None  # refused by the size bound, quickly
    assert too_large("9^{9^{9}}") and too_large("2^{100000}") and not too_large("2^{10}")
    assert rewrite("1\\le x<7") == "[1, 7)"
    assert rewrite("no rule applies here") == "no rule applies here"
    assert rewrite("\\sin 2\\pi x") == "\\sin 2\\pi x"  # a trig value is only rewritten when complete
    assert rewrite("x^2 < 4") == "x^2 < 4"  # not an interval in x
    assert decide("(1, 2)", "(1, 2, 3)") is False
    assert decide("no", "on") is None and parse_expr("1 and 2") is None  # words are not products of letters
    assert ratios_equal(parse_expr("a^2+3at-4t^2"), parse_expr("(a+4t)(a-t)"))
    assert parse_yes_no("Yes.") is True and parse_yes_no("no") is False
    assert parse_yes_no("yes, but no") is None and parse_yes_no("The answer is yes") is None


def test_symbolic_rounding_is_vetoed_for_numbers_that_differ():
    pytest.importorskip("math_verify")
    v = MathVerifier()
    out = v.compare("\\frac{1}{2006!}", "\\frac{1}{2004!}")
    assert out.path == "symbolic" and not out.correct
    assert v.compare("\\frac{1}{2004!}", "\\frac{1}{2004!}").correct


def test_verify_path_is_recorded_on_every_graded_response():
    g = {"prompt": "q", "answer": "\\frac{1}{2}",
         "responses": [{"text": "\\boxed{0.5}"}, {"text": "\\boxed{3}"}, {"text": ""}]}
    rs = verify_groups([g], workers=0)[0]["responses"]
    assert [r["meta"]["verify_path"] for r in rs] == ["exact", "exact", "exact"]


# ------------------------------------------------------------------ judge cascade
def _judge_groups():
    return [{"prompt": "What is the ratio of the areas?", "answer": "\\frac{1}{2}",
             "responses": [{"text": "<think>long reasoning 1/2</think> The ratio is \\boxed{\\text{one half}}."},
                           {"text": "\\boxed{0.5}"},
                           {"text": "\\boxed{\\text{three quarters}}"},
                           {"text": "I could not finish the computation and we still need to"}]}]


def test_judge_fallback_asks_only_about_rejected_answers(monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")

    def reply(request):
        text = request.prompt_text
        return "yes" if "one half" in text else "No."

    with LoopbackServer(reply=reply) as srv:
        out = verify_groups(_judge_groups(), workers=1, timeout=10, fallback="judge", model="judge-m",
                            base_url=srv.base_url)
        prompts = [r.prompt_text for r in srv.requests]
    rs = out[0]["responses"]
    assert [r["correct"] for r in rs] == [True, True, False, False]
    assert [r["meta"].get("verify_path") for r in rs] == ["judge", "exact", "judge", "exact"]
    assert len(prompts) == 2  # the exact match and the truncated completion are never sent
    assert all("long reasoning" not in p and "\\frac{1}{2}" in p and "ratio of the areas" in p for p in prompts)


def test_verify_command_with_judge_fallback_counts_paths(tmp_path, monkeypatch, capsys):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(_judge_groups()[0]) + "\n")
    with LoopbackServer(reply=lambda req: "yes" if "one half" in req.prompt_text else "no") as srv:
        rc = main(["verify", str(src), "--out", str(out), "--workers", "1", "-O", "fallback=judge",
                   "-O", "model=m", "-O", f"base_url={srv.base_url}", "--quiet"])
    assert rc == 0
    assert "decided by exact 2, symbolic 0, judge 2" in capsys.readouterr().err
    paths = [r["meta"].get("verify_path") for r in json.loads(out.read_text())["responses"]]
    assert paths == ["judge", "exact", "judge", "exact"]


def test_judge_reply_that_is_not_yes_or_no_keeps_the_rules_verdict(monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with LoopbackServer(reply="I think it is probably equivalent, yes.") as srv:
        out = verify_groups(_judge_groups(), workers=0, fallback="judge", model="m", base_url=srv.base_url)
    rs = out[0]["responses"]
    assert [r["correct"] for r in rs] == [False, True, False, False]
    assert "rules kept" in rs[0]["meta"]["verify_detail"] and rs[0]["meta"]["verify_path"] != "judge"


def test_judge_is_never_configured_by_data_and_bad_fallback_is_refused(tmp_path):
    g = _judge_groups()[0]
    g["fallback"], g["model"], g["base_url"] = "judge", "m", "http://127.0.0.1:9/v1"
    rs = verify_groups([g], workers=0)[0]["responses"]
    assert [r["correct"] for r in rs] == [False, True, False, False]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_judge_groups()[0]) + "\n")
    assert main(["verify", str(src), "--out", str(tmp_path / "o.jsonl"), "-O", "fallback=model"]) == 2
    assert main(["verify", str(src), "--out", str(tmp_path / "o.jsonl"), "-O", "fallback=judge"]) == 2


def test_check_counts_verdicts_by_path(tmp_path, capsys):
    from gradeset.check import collect_stats

    g = {"id": "a", "prompt": "q", "answer": "1",
         "responses": [{"text": "\\boxed{1}"}, {"text": "\\boxed{2}"}, {"text": "\\boxed{3}"}]}
    verify_groups([g], workers=0)
    g["responses"][1]["meta"]["verify_path"] = "judge"
    assert collect_stats([g])["verify_paths"] == {"exact": 2, "judge": 1}
    src = tmp_path / "g.jsonl"
    src.write_text(json.dumps(g) + "\n")
    main(["check", str(src), "--report", str(tmp_path / "r.html")])
    assert "verdicts by path: exact 2, judge 1" in capsys.readouterr().out
    assert "exact: 2, judge: 1" in (tmp_path / "r.html").read_text()


# ------------------------------------------------------------------ audit
def test_audit_reports_by_category_and_holds_the_baseline(tmp_path, capsys):
    out = tmp_path / "audit.json"
    rc = main(["audit", str(DATA / "audit_labelled.jsonl"), "--json", str(out), "--no-math-verify",
               "--baseline", str(DATA / "audit_baseline.json")])
    report = json.loads(out.read_text())
    assert rc == 0, capsys.readouterr().err
    g = report["tools"]["gradeset"]
    cats = g["by_category"]
    assert report["cases"] >= 250 and len(cats) >= 20
    assert all(c["right"] + c["false_positives"] + c["false_negatives"] == c["labelled"] for c in cats.values())
    assert g["right"] + g["false_positives"] + g["false_negatives"] == g["labelled"]
    kinds = [m["kind"] for m in report["mistakes"]]
    assert kinds == sorted(kinds, key=lambda k: k != "false positive")  # false positives first
    assert "category" in capsys.readouterr().out


def test_audit_fails_when_the_grader_gets_worse(tmp_path, monkeypatch, capsys):
    import gradeset.verify.audit as audit

    real = audit.grade_gradeset
    monkeypatch.setattr(audit, "grade_gradeset", lambda cases, **kw: [True] * len(cases))
    rc = main(["verify", "--audit", str(DATA / "audit_labelled.jsonl"), "--no-math-verify",
               "--baseline", str(DATA / "audit_baseline.json")])
    assert rc == 1 and "false positives grew" in capsys.readouterr().err
    monkeypatch.setattr(audit, "grade_gradeset", real)


def test_audit_keeps_bad_lines_and_exits_2(tmp_path, capsys):
    src = tmp_path / "cases.jsonl"
    good = {"task": "math", "completion": "\\boxed{5}", "gold": "5", "expected": True, "category": "c", "why": ""}
    src.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "expected": "yes"}) + "\n")
    rc = main(["audit", str(src), "--no-math-verify", "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{src}:2" in err and f"{src}:3" in err
    rejects = [json.loads(x) for x in (tmp_path / "r.json.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 3] and rejects[0]["raw"] == "{not json"
    assert json.loads((tmp_path / "r.json").read_text())["tools"]["gradeset"]["right"] == 1


def test_audit_side_by_side_with_math_verify(tmp_path):
    pytest.importorskip("math_verify")
    src = tmp_path / "cases.jsonl"
    rows = [{"completion": "\\boxed{\\frac{1}{3^{71}}}", "gold": "\\frac{1}{3^{70}}", "expected": False,
             "category": "tiny", "why": "Math-Verify #14"},
            {"completion": "\\boxed{1\\le x<7}", "gold": "[1,7)", "expected": True, "category": "interval"}]
    src.write_text("".join(json.dumps({**r, "why": r.get("why", "")}) + "\n" for r in rows))
    assert main(["audit", str(src), "--json", str(tmp_path / "r.json")]) == 0
    tools = json.loads((tmp_path / "r.json").read_text())["tools"]
    assert tools["gradeset"]["right"] == 2
    assert tools["math-verify"]["labelled"] == 2


def test_hard_answer_file_is_graded_right_by_the_exact_path(monkeypatch):
    """Every competition-style row inside the exact grammar is decided there, right, without sympy;
    the rows outside it (logarithms, e, cube roots, trig of a variable) are about a tenth."""
    import gradeset.verify.symbolic as symbolic

    rows = [json.loads(x) for x in (DATA / "hard_answers.jsonl").read_text().splitlines() if x.strip()]
    assert len(rows) >= 300 and {r["expected"] for r in rows} == {True, False}
    assert len({r["kind"] for r in rows}) >= 9
    inside = [r for r in rows if r["kind"] != "beyond_exact"]
    assert len(inside) >= 0.85 * len(rows)

    def no_sympy(*a, **k):
        raise AssertionError("the symbolic path was used")

    monkeypatch.setattr(symbolic, "parse_gold", no_sympy)
    monkeypatch.setattr(symbolic, "parse_answer", no_sympy)
    v = MathVerifier()
    outs = [v(r["completion"], r["gold"]) for r in inside]
    wrong = [(r["gold"], r["completion"][-50:]) for r, o in zip(inside, outs) if o.correct != r["expected"]]
    assert not wrong
    assert all(o.path == "exact" for o in outs)
