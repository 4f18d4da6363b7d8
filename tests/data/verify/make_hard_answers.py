"""Write hard_answers.jsonl: competition-style answers for the hard-answer speed benchmark.

    python tests/data/verify/make_hard_answers.py

Each row is ``{"kind", "gold", "completion", "expected"}``: polynomials in several variables
(expanded against factored), rational functions, tuples and sets of expressions,
intervals with parameters, inequalities, function definitions, equations of lines and
circles, trigonometric values, surds and big exact powers; about half right, the rest
with the mistakes models make (a sign, a coefficient, a swapped pair, an endpoint).
Deterministic (seeded).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("hard_answers.jsonl")
rng = random.Random(2026)
V = ["x", "y", "z", "a", "b", "t", "m", "n"]
ROWS: list[dict] = []


def wrap(ans: str) -> str:
    pre = rng.choice(["Expanding and collecting like terms, ", "Substituting back into the original equation, ",
                      "After simplifying, ", "Checking both cases, "])
    return pre + "we get the result.\n\n" + rng.choice(["Therefore, the final answer is $\\boxed{%s}$.",
                                                        "\\[\\boxed{%s}\\]", "The answer is $\\boxed{%s}$."]) % ans


def add(kind: str, gold: str, right: str, wrong: str) -> None:
    ok = rng.random() < 0.5
    ROWS.append({"kind": kind, "gold": gold, "completion": wrap(right if ok else wrong), "expected": ok})


def sgn(c: int) -> str:
    return f"+{c}" if c >= 0 else f"-{-c}"


def polynomial():
    u, w = rng.sample(V[:6], 2)
    a, b, c = rng.randint(1, 6), rng.randint(1, 6), rng.choice([1, 2, 3])
    form = rng.choice(["square", "product", "cube", "diff"])
    if form == "square":
        gold = f"{a * a}{u}^2{sgn(2 * a * b)}{u}{w}+{b * b}{w}^2"
        add("polynomial", gold, f"({a}{u}+{b}{w})^2", f"({a}{u}-{b}{w})^2")
    elif form == "product":
        b = a + rng.randint(1, 4)  # a != b, or the swapped-sign "wrong" answer would be right
        gold = f"{u}^2{sgn(b - a)}{u}{w}{sgn(-a * b)}{w}^2"
        add("polynomial", gold, f"({u}-{a}{w})({u}+{b}{w})", f"({u}+{a}{w})({u}-{b}{w})")
    elif form == "cube":
        gold = f"{u}^3+{3 * c}{u}^2{w}+{3 * c * c}{u}{w}^2+{c ** 3}{w}^3"
        add("polynomial", gold, f"({u}+{c}{w})^3", f"({u}+{c}{w})^2({u}-{c}{w})")
    else:
        gold = f"{u}^4-{w}^4"
        add("polynomial", gold, f"({u}-{w})({u}+{w})({u}^2+{w}^2)", f"({u}-{w})^2({u}+{w})^2")


def rational():
    a, b, k = rng.randint(1, 9), rng.randint(1, 9), rng.randint(2, 5)
    u = rng.choice(V[:4])
    form = rng.choice(["scaled", "sum", "cancel"])
    if form == "scaled":
        add("rational", f"\\frac{{{u}+{a}}}{{{u}-{b}}}", f"\\frac{{{k}{u}+{k * a}}}{{{k}{u}-{k * b}}}",
            f"\\frac{{{u}-{a}}}{{{u}+{b}}}")
    elif form == "sum":
        add("rational", f"\\frac{{1}}{{{u}}}+\\frac{{1}}{{{u}+{a}}}", f"\\frac{{2{u}+{a}}}{{{u}({u}+{a})}}",
            f"\\frac{{2{u}+{a + 1}}}{{{u}({u}+{a})}}")
    else:
        add("rational", f"{u}+{a}", f"\\frac{{{u}^2-{a * a}}}{{{u}-{a}}}", f"\\frac{{{u}^2+{a * a}}}{{{u}-{a}}}")


def tuples():
    p, q = rng.randint(1, 9), rng.randint(2, 9)
    form = rng.choice(["point", "set", "exprs"])
    if form == "point":
        add("tuple", f"\\left(\\frac{{{p}}}{{{q}}}, -\\sqrt{{{q}}}\\right)", f"({p}/{q}, -\\sqrt{{{q}}})",
            f"(-\\frac{{{p}}}{{{q}}}, \\sqrt{{{q}}})")
    elif form == "set":
        add("set", f"\\{{({p}, {q}), ({q}, {p})\\}}", f"\\{{({q},{p}),({p},{q})\\}}", f"\\{{({p},{q}),({q},{p + 1})\\}}")
    else:
        add("tuple", f"(a+{p}, 2a-{q})", f"({p}+a, -{q}+2a)", f"(a+{p}, 2a+{q})")


def intervals():
    p, q = rng.randint(1, 9), rng.randint(10, 20)
    form = rng.choice(["param", "ineq", "union"])
    if form == "param":
        add("interval", f"[{p}a, {q}a)", f"\\left[{p}a,{q}a\\right)", f"({p}a,{q}a)")
    elif form == "ineq":
        add("interval", f"[-{p}, {q})", f"-{p}\\le x<{q}", f"-{p}<x\\le {q}")
    else:
        add("interval", f"(-\\infty, -{p}) \\cup ({q}, \\infty)", f"x<-{p} \\text{{ or }} x>{q}",
            f"(-\\infty, -{p}] \\cup [{q}, \\infty)")


def functions():
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    v1, v2 = rng.sample(["x", "n", "m", "t"], 2)
    form = rng.choice(["linear", "quad"])
    if form == "linear":
        add("function", f"f({v1})={a}{v1}+{b}", f"f({v2})={b}+{a}{v2}", f"f({v2})={a}{v2}-{b}")
    else:
        add("function", f"f({v1})={v1}^2+{2 * a}{v1}+{a * a}", f"f({v2})=({v2}+{a})^2", f"f({v2})=({v2}-{a})^2")


def equations():
    a, b, r = rng.randint(1, 9), rng.randint(1, 9), rng.randint(2, 6)
    form = rng.choice(["line", "circle"])
    if form == "line":
        add("equation", f"{a}x+{b}y={a * b}", f"y=-\\frac{{{a}}}{{{b}}}x+{a}", f"y=\\frac{{{a}}}{{{b}}}x+{a}")
    else:
        add("equation", f"(x-{a})^2+(y+{b})^2={r * r}",
            f"x^2+y^2-{2 * a}x+{2 * b}y+{a * a + b * b - r * r}=0",
            f"x^2+y^2-{2 * a}x-{2 * b}y+{a * a + b * b - r * r}=0")


def trig():
    table = [("\\frac{\\sqrt{3}}{2}", "\\sin 60^\\circ", "\\sin 30^\\circ"),
             ("\\frac{\\sqrt{2}}{2}", "\\cos\\frac{\\pi}{4}", "\\tan\\frac{\\pi}{4}"),
             ("\\sqrt{3}", "\\tan 60^\\circ", "\\tan 30^\\circ"),
             ("-\\frac{1}{2}", "\\cos 120^\\circ", "\\cos 60^\\circ"),
             ("\\frac{\\sqrt{3}}{3}", "\\tan\\frac{\\pi}{6}", "\\tan\\frac{\\pi}{3}")]
    gold, right, wrong = rng.choice(table)
    add("trig", gold, right, wrong)


def surds_and_powers():
    a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
    form = rng.choice(["surd", "power"])
    if form == "surd":
        add("surd", f"\\frac{{{a}\\sqrt{{{b}}}}}{{{b}}}", f"\\frac{{{a}}}{{\\sqrt{{{b}}}}}",
            f"\\frac{{{b}}}{{\\sqrt{{{a * a * b}}}}}")
    else:
        e = rng.randint(40, 300)
        add("power", f"\\frac{{1}}{{{b}^{{{e}}}}}", f"{b}^{{-{e}}}", f"\\frac{{1}}{{{b}^{{{e + 1}}}}}")


def beyond():
    """Answers outside the exact grammar (logarithms, e, cube roots, trig of a variable): sympy decides."""
    a, b = rng.randint(2, 6), rng.randint(2, 6)
    table = [(f"\\ln {a * b}", f"\\ln {a} + \\ln {b}", f"\\ln {a} \\cdot \\ln {b}"),
             (f"e^{{{a + b}}}", f"e^{{{a}}} e^{{{b}}}", f"e^{{{a * b}}}"),
             (f"\\sqrt[3]{{{a}}}", f"{a}^{{1/3}}", f"{a}^{{1/2}}"),
             ("\\sin 2x", "2\\sin x \\cos x", "2\\sin x"),
             (f"\\log_2 {2 ** a}", str(a), str(a + 1))]
    gold, right, wrong = rng.choice(table)
    add("beyond_exact", gold, right, wrong)


MAKERS = [polynomial, rational, tuples, intervals, functions, equations, trig, surds_and_powers, beyond]

if __name__ == "__main__":
    for i in range(405):
        MAKERS[i % len(MAKERS)]()
    with OUT.open("w", encoding="utf-8") as fh:
        for r in ROWS:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(ROWS)} rows to {OUT}")
