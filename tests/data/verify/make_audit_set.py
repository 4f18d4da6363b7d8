"""Write audit_labelled.jsonl: human-labelled grading cases for ``gradeset audit``.

    python tests/data/verify/make_audit_set.py      # rewrites the file beside this script

Each class of issue 13 gets its own category, with both the right answers written
unusually (``expected: true``) and wrong answers that a careless grader accepts
(``expected: false``); the classes where graders mark wrong answers correct come first.
Cases from public bug reports say so in ``why`` (Math-Verify issues #10, #14, #26, #71).
Completions imitate real model output: step-by-step reasoning with intermediate numbers,
``<think>`` blocks, chat-template tokens, prose endings. Deterministic (seeded).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("audit_labelled.jsonl")
rng = random.Random(13)


def steps(k: int = 3) -> str:
    out = []
    for _ in range(k):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        out.append(rng.choice([f"First, ${a} + {b} = {a + b}$.", f"Then ${a} \\cdot {b} = {a * b}$.",
                               f"Subtracting gives ${a * b} - {a} = {a * b - a}$.", f"So we have {a} groups of {b}."]))
    return " ".join(out)


def boxed(ans: str) -> str:
    return steps() + "\n\n" + rng.choice(["Therefore, the final answer is $\\boxed{%s}$.",
                                          "So the answer is \\boxed{%s}.", "\\[\\boxed{%s}\\]"]) % ans


CASES: list[dict] = []


def add(category: str, gold, completion: str, expected, why: str, task: str = "math", question: str = "") -> None:
    row = {"task": task, "category": category, "gold": gold, "completion": completion, "expected": expected,
           "why": why}
    if question:
        row["question"] = question
    CASES.append(row)


# ============================================================ wrong answers marked correct
def truncated():
    for _ in range(6):
        n = rng.randint(3, 9)
        multiples = [n * i for i in range(1, rng.randint(4, 7))]
        gold = str(multiples[-1])
        add("fp_truncated", gold, f"We list the multiples of {n} until the pattern repeats: "
            + ", ".join(map(str, multiples)), False, "cut off while listing; the last number is a step, not an answer")
    for _ in range(5):
        e = rng.randint(3, 6)
        add("fp_truncated", str(3 ** e), f"There are three steps. Step 1: count the choices for each digit, "
            f"which gives $3^{{{e}}}={3 ** e}$", False, "stops after the first of three steps at a displayed value")
    for _ in range(4):
        g = rng.randint(2, 9)
        add("fp_truncated", str(g), f"{steps(4)} The cases are:\n\n1. {g} ways when the first is red\n\n{g}.",
            False, "stops at a list marker")
    for _ in range(4):
        g = rng.randint(10, 99)
        add("fp_truncated", str(g), f"{steps(2)} Combining, we obtain {g} and then we need to subtract the",
            False, "stops mid-sentence; the last number is intermediate")


def hedges():
    for _ in range(5):
        a = rng.randint(2, 30)
        add("fp_hedge", str(a), f"{steps()} If zero counts, the answer is $\\boxed{{{a}}}$; otherwise it is "
            f"$\\boxed{{{a - 1}}}$.", False, "two boxed alternatives: a hedge is wrong")
        add("fp_hedge", str(a), f"{steps()} So the answer is either {a} or {a + 1}.", False, "either/or hedge")
    for letter, other in (("B", "D"), ("A", "C"), ("C", "D")):
        add("fp_hedge", letter, f"Both fit the data, so the answer is ({letter}) and ({other}).", False,
            "two letters chosen", task="mcq")
    for _ in range(3):
        a = rng.randint(2, 30)
        add("fp_hedge", str(a), f"{steps()} The final answer is $\\boxed{{{a}}}$.", True, "single committed answer")


def tiny_numbers():
    for _ in range(8):
        m, e = rng.randint(11, 99) / 10, rng.randint(6, 12)
        m2 = round(m + rng.choice([0.2, 0.3, -0.3, 0.5]), 1)
        add("fp_tiny_numbers", f"{m}\\times10^{{-{e}}}", boxed(f"{m2}\\times 10^{{-{e}}}"), False,
            "equal only after rounding to 6 decimals; relative error is large")
        add("fp_tiny_numbers", f"{m}\\times10^{{-{e}}}", boxed(f"{m}\\times 10^{{-{e}}}"), True, "same value")
    add("fp_tiny_numbers", "0.0000031", boxed("0.0000034"), False, "tiny decimals that differ")
    add("fp_tiny_numbers", "\\frac{1}{2^{30}}", boxed("\\frac{1}{2^{31}}"), False, "tiny rationals that differ")


def dropped_part():
    for _ in range(4):
        a = rng.randint(2, 60)
        add("fp_dropped_part", str(a), boxed(f"{a}\\pi \\text{{ m}}^2"), False, "pi dropped with the unit")
        add("fp_dropped_part", f"{a}\\pi", boxed(f"{a}\\pi \\text{{ m}}^2"), True, "unit dropped, pi kept")
        add("fp_dropped_part", str(a), f"{steps()} The area is {a}π square units.", False, "π is part of the value")
        b = rng.randint(2, 9)
        add("fp_dropped_part", str(a), boxed(f"{a}\\sqrt{{{b + (b in (4, 9))}}}"), False, "radical dropped")
        add("fp_dropped_part", f"\\frac{{{b}}}{{{a}}}", f"{steps()} The slope is −{b}/{a}.", False,
            "Unicode minus is a sign")


def big_exponents():
    for b, e in ((3, 70), (2, 99), (5, 40), (7, 33), (2, 150), (3, 200)):
        add("fp_big_exponents", f"\\frac{{1}}{{{b}^{{{e}}}}}", boxed(f"\\frac{{1}}{{{b}^{{{e + 1}}}}}"), False,
            "Math-Verify #14: tiny values compare equal after rounding")
        add("fp_big_exponents", f"\\frac{{1}}{{{b}^{{{e}}}}}", boxed(f"{b}^{{-{e}}}"), True, "same exact value")
    add("fp_big_exponents", "\\frac{1}{2004!}", boxed("\\frac{1}{2006!}"), False, "Math-Verify #14")
    add("fp_big_exponents", "\\frac{2^{2005}+1}{3 \\cdot 2^{2006}}", boxed("\\frac{1}{3 \\cdot 2^{2006}}"), False,
        "Math-Verify #14")
    add("fp_big_exponents", "9^{9^{9}}", boxed("9^{9^{9}}+1"), False, "power tower: never decided by floats")


def equation_sides():
    add("fp_equation_side", "n=2, 3, 4", boxed("n=1, 2, 3"), False, "Math-Verify #14: lists that differ")
    add("fp_equation_side", "D=(0, 1)", boxed("D=(0, 1.5)"), False, "Math-Verify #14: intervals that differ")
    add("fp_equation_side", "19, 46, 82", boxed("21, 36, 82"), False, "Math-Verify #14")
    add("fp_equation_side", "\\pm 2021", boxed("2021"), False, "Math-Verify #14: half of a ± answer")
    add("fp_equation_side", "3x-y+13=0", boxed("3x+4y+14=0"), False, "Math-Verify #60: different lines")
    add("fp_equation_side", "2x+4y-3=0", boxed("y=-\\frac{1}{2}x+\\frac{3}{4}"), True,
        "Math-Verify #26: the same line")
    for _ in range(4):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        add("fp_equation_side", f"y={a}x+{b}", boxed(f"y={a}x+{b + 1}"), False, "different intercept")
        add("fp_equation_side", f"y={a}x+{b}", boxed(f"y={b}+{a}x"), True, "terms reordered")


def rewrite_guards():
    """Notation rules must never turn a wrong answer right."""
    rows = [("0", "\\sin 2\\pi x", False, "a trig value needs a complete angle"),
            ("(-\\infty, 3)", "x \\le 3", False, "closed vs open endpoint"),
            ("f(x)=2x+1", "f(x)=2y+1", False, "a different free variable"),
            ("\\pm 3", "3", False, "half of a plus-minus answer"),
            ("\\pm 3", "3, -3", True, "both signs listed"),
            ("(1,2)", "[1,2]", False, "interval brackets differ"),
            ("1, 4", "x = 1 \\text{ or } x = 5", False, "one solution wrong"),
            ("1, 4", "x = 1 \\text{ or } x = 4", True, "solutions as alternatives"),
            ("2, 9", "\\text{Minimum: } 9, \\text{Maximum: } 9", False, "labels do not rescue a wrong value"),
            ("\\frac{\\sqrt{3}}{2}", "\\sin 120^\\circ", True, "exact trig value"),
            ("-\\frac{\\sqrt{3}}{2}", "\\sin 120^\\circ", False, "sign of a trig value")]
    for gold, ans, ok, why in rows:
        add("fp_rewrite_guards", gold, boxed(ans), ok, why)


# ============================================================ correct answers marked wrong
def commentary():
    for _ in range(5):
        g = rng.randint(10, 90)
        add("fn_commentary", str(g), f"{steps()} So the answer is $\\boxed{{{g}}}$. This is reasonable because "
            f"each of the {g // 9} rows has 4 seats (which has 4).", True, "commentary after the box")
        add("fn_commentary", str(g), f"{steps()} So the answer is $\\boxed{{{g + 3}}}$. Wait, I made an error in "
            f"step 2. The answer is actually $\\boxed{{{g}}}$.", True, "a later explicit correction overrides")
        add("fn_commentary", str(g), f"{steps()} So the answer is $\\boxed{{{g}}}$. Wait, I made an error. "
            f"The answer is actually $\\boxed{{{g + 3}}}$.", False, "the correction to a wrong value wins")
    add("fn_commentary", "C", "**Answer: C**\n\nOption A is ruled out because the rate is too low.", True,
        "commentary names another option", task="mcq")


def prose_unicode():
    rows = [("1, 4", "Solving, x = 1 and x = 4.", True), ("\\frac{5}{12}", "The probability is 5 out of 12.", True),
            ("16\\pi", "The area is 16π.", True), ("\\frac{\\sqrt{2}}{2}", "Thus sin 45° = √2/2.", True),
            ("3\\sqrt{5}", "The distance is 3√5.", True), ("x^2+3x-4", "Expanding gives x² + 3x − 4.", True),
            ("\\frac{11}{4}", "She needs 2 3/4 cups.", True), ("-\\frac{2}{5}", "The slope is −2/5.", True),
            ("317", "\\[Answer: 317\\]", True), ("5", "Answer: let me work through it. First 2+3=5, then we need",
                                                  False)]
    for gold, text, ok in rows:
        add("fn_prose_unicode", gold, steps(2) + " " + text, ok, "plain prose / Unicode math")
    add("fn_prose_unicode", "16\\pi", steps(2) + " The area is 16π.", True, "Unicode pi")
    add("fn_prose_unicode", "-\\frac{2}{5}", steps(2) + " The slope is 2/5.", False, "sign missing")


def intervals():
    for _ in range(6):
        lo, hi = sorted(rng.sample(range(-20, 30), 2))
        add("fn_intervals", f"[{lo},{hi})", boxed(f"{lo}\\le x<{hi}"), True, "inequality for an interval")
        add("fn_intervals", f"[{lo},{hi})", boxed(f"{lo}< x<{hi}"), False, "wrong endpoint type")
        add("fn_intervals", f"({lo},{hi})", boxed(f"\\{{x \\mid {lo}<x<{hi}\\}}"), True, "set-builder")
        add("fn_intervals", f"(-\\infty,{lo})\\cup({hi},\\infty)", boxed(f"x<{lo} \\text{{ or }} x>{hi}"), True,
            "union as 'or'")
        add("fn_intervals", f"(-\\infty,{lo})\\cup({hi},\\infty)", boxed(f"x<{lo} \\text{{ or }} x>{hi + 1}"),
            False, "wrong endpoint")
    add("fn_intervals", "(0, 12.5)", boxed("0 < x < 12.5"), True, "Math-Verify #10")
    add("fn_intervals", "(-\\infty, 3)", boxed("x<3"), True, "Math-Verify #71: order must not matter")
    add("fn_intervals", "(-3,2)", boxed("-3<x<2"), True, "open interval")


def pmatrix():
    for _ in range(5):
        v = [rng.randint(-9, 9) for _ in range(3)]
        add("fn_pmatrix", "(" + ",".join(map(str, v)) + ")",
            boxed("\\begin{pmatrix}" + "\\\\".join(map(str, v)) + "\\end{pmatrix}"), True, "column vector")
        w = list(v)
        w[1] += 1
        add("fn_pmatrix", "(" + ",".join(map(str, v)) + ")",
            boxed("\\begin{pmatrix}" + "\\\\".join(map(str, w)) + "\\end{pmatrix}"), False, "different entry")


def ordinal():
    for n in (12, 3, 21):
        add("fn_ordinal", str(n), boxed(f"{n}^{{\\text{{th}}}}"), True, "ordinal suffix")
        add("fn_ordinal", str(n), boxed(f"{n + 1}^{{\\text{{th}}}}"), False, "different ordinal")


def angles():
    for d, m in ((30, 15), (45, 30), (12, 45), (60, 6)):
        dec = d + m / 60
        add("fn_angles", f"{dec:g}^\\circ", boxed(f"{d}^\\circ {m}'"), True, "degrees-minutes")
        add("fn_angles", f"{dec:g}^\\circ", boxed(f"{d}^\\circ {m + 5}'"), False, "different minutes")
    for deg, val in ((60, "\\frac{\\sqrt{3}}{2}"), (45, "\\frac{\\sqrt{2}}{2}"), (30, "\\frac{1}{2}")):
        add("fn_angles", val, boxed(f"\\sin {deg}^\\circ"), True, "trig value of a standard angle")
        add("fn_angles", val, boxed(f"\\cos {deg}^\\circ"), deg == 45, "sin vs cos")


def renamed_function():
    for _ in range(5):
        a, c = rng.randint(2, 9), rng.choice(["c", "1", "3"])
        add("fn_renamed_function", f"f(n)={a}n+{c}", boxed(f"f(m)={a}m+{c}"), True, "renamed variable")
        add("fn_renamed_function", f"f(n)={a}n+{c}", boxed(f"f(m)={a + 1}m+{c}"), False, "different slope")
        add("fn_renamed_function", f"{a}x+{c}", boxed(f"f(x)={a}x+{c}"), True, "f(x)= prefix on the answer")
        add("fn_renamed_function", f"y={a}x+{c}", boxed(f"{a}x+{c}"), True, "y= prefix on the gold")


def labelled():
    for _ in range(5):
        lo, hi = rng.randint(1, 9), rng.randint(10, 30)
        add("fn_labelled", f"{lo}, {hi}", boxed(f"\\text{{Minimum: }} {lo}, \\text{{Maximum: }} {hi}"), True,
            "labelled parts")
        add("fn_labelled", f"{lo}, {hi}", f"{steps()} Minimum: {lo}, Maximum: {hi}", True, "labelled, plain text")
        add("fn_labelled", f"{lo}, {hi}", boxed(f"\\text{{Minimum: }} {lo}, \\text{{Maximum: }} {hi + 1}"), False,
            "wrong part")
        a, b = rng.randint(5, 20), rng.randint(1, 9)
        add("fn_labelled", f"{a}, {b}", boxed(f"\\text{{Anna: }} {a}, \\text{{Ben: }} {b}"), True, "names as labels")


def rounded():
    qs = [("Round your answer to the nearest tenth.", "3.14159", "3.1", True),
          ("Round to the nearest hundredth.", "2.71828", "2.72", True),
          ("Give your answer to two decimal places.", "\\frac{1}{3}", "0.33", True),
          ("Round to the nearest whole number.", "12.6", "13", True),
          ("Round your answer to the nearest tenth.", "3.14159", "3.2", False),
          ("What is the exact value?", "\\frac{1}{3}", "0.33", False),
          ("Find the area.", "3.14159", "3.1", False),
          ("Round to the nearest hundredth.", "\\sqrt{2}", "1.41", True),
          ("Round to the nearest hundredth.", "\\sqrt{2}", "1.4", False)]
    for q, gold, ans, ok in qs:
        add("fn_rounded", gold, boxed(ans), ok, "rounded value only when the question asks", question=q)


def locale():
    rows = [("2500000", "2.500.000", True), ("1250000", "12,50,000", True), ("3000000", "3'000'000", True),
            ("7.5", "7,5", True), ("2500", "2.500.000", False)]
    for gold, ans, ok in rows:
        add("fn_locale", gold, steps() + f" Die Antwort ist {ans}.", ok, "locale separators")


def units():
    rows = [("6.0\\times10^{23}", "6.0\\times10^{23}\\ \\text{mol}^{-1}", True), ("42", "\\$42", True),
            ("42", "42 \\text{ dollars}", True), ("43", "42 \\text{ dollars}", False)]
    for gold, ans, ok in rows:
        add("fn_units", gold, boxed(ans), ok, "units and currency")
    add("fn_units", "#### 0.75", boxed("\\frac34"), True, "gsm8k verifier with a LaTeX fraction", task="gsm8k")


def gsm8k():
    rows = [("12", "So she has the 12 apples!", True), ("24", "The total is 24 (8 pens at $3 each).", True),
            ("135", "It takes 2 hours and 15 minutes, i.e. 135 minutes.", True),
            ("7", "Each friend gets 7 (with 3 left over).", True), ("8", "Each friend gets 7 (with 3 left over).",
                                                                    False)]
    for gold, text, ok in rows:
        add("fn_gsm8k", f"Work.\n#### {gold}", steps() + " " + text, ok, "final sentence, not the last digits",
            task="gsm8k")


def mcq():
    rows = [("D", "答案：D", True), ("B", "\\boxed{\\textbf{(B)}\\ 7}", True), ("B", "\\textbf{(B) }7", True),
            ("C", "Looking at the options, I'd pick C.", True), ("C", "I'd pick C. Actually, on reflection the "
                                                                     "answer is B.", False)]
    for gold, text, ok in rows:
        add("fn_mcq", gold, steps(2) + " " + text, ok, "multiple-choice styles", task="mcq")


def trivia():
    add("fn_trivia", ["Jupiter"], "The largest planet is Jupiter.", True, "alias inside a short final sentence",
        task="trivia")
    add("fn_trivia", ["Jupiter"], "The largest planet is Saturn.", False, "wrong alias", task="trivia")


def chat_template():
    for _ in range(3):
        g = rng.randint(2, 50)
        add("fn_chat_template", str(g), f"<|im_start|>assistant\n{steps()} \\boxed{{{g}}}<|im_end|>", True,
            "template tokens left in")
        add("fn_chat_template", str(g), f"<think>{steps(5)}</think>\n\nThe answer is $\\boxed{{{g}}}$.", True,
            "think block then the answer")


def hard_expressions():
    for _ in range(6):
        a, b = rng.randint(1, 5), rng.randint(1, 5)
        gold = f"x^2+{2 * a * b}xy+{b * b}y^2" if a == 1 else f"{a * a}x^2+{2 * a * b}xy+{b * b}y^2"
        add("hard_expressions", gold, boxed(f"({a}x+{b}y)^2"), True, "expanded vs factored polynomial")
        add("hard_expressions", gold, boxed(f"({a}x-{b}y)^2"), False, "sign error")
        add("hard_expressions", f"\\frac{{x+{a}}}{{x-{b}}}", boxed(f"\\frac{{2x+{2 * a}}}{{2x-{2 * b}}}"), True,
            "scaled rational function")
        add("hard_expressions", f"(\\frac{{{a}}}{{2}}, -{b})", boxed(f"({a / 2:g}, -{b})"), True, "tuple")


for make in (truncated, hedges, tiny_numbers, dropped_part, big_exponents, equation_sides, rewrite_guards,
             commentary,
             prose_unicode, intervals, pmatrix, ordinal, angles, renamed_function, labelled, rounded, locale, units,
             gsm8k, mcq, trivia, chat_template, hard_expressions):
    make()

# classes where wrong answers are marked correct first; within a class, expected-false first
order = {c: i for i, c in enumerate(dict.fromkeys(r["category"] for r in CASES))}
CASES.sort(key=lambda r: (not r["category"].startswith("fp_"), order[r["category"]], r["expected"] is not False))

if __name__ == "__main__":
    with OUT.open("w", encoding="utf-8") as fh:
        for r in CASES:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases to {OUT}")
