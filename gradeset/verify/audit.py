"""Audit a grader against human labels: precision, recall, false positives per category.

A labelled case is one JSON line::

    {"task": "math", "question": "...", "completion": "...", "gold": "...",
     "expected": true | false | null, "category": "...", "why": "..."}

``expected`` is the verdict a careful human grader gives; ``null`` marks a case where no
verdict is defensible (it is counted, never scored). A false positive (a wrong answer
graded correct) is a wrong training signal, so the report lists them first.

The same cases are graded by math-verify when it is installed (math tasks only, its own
extraction and comparison, gold first), so the two graders can be read side by side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gradeset.io.rejects import Reject

FIELDS = ("completion", "gold", "expected", "category")
MATH_TASKS = ("math", "maths", "gsm8k", "gsm")


@dataclass
class Case:
    line: int
    task: str
    completion: str
    gold: Any
    expected: bool | None
    category: str
    why: str = ""
    question: str = ""


def parse_case(raw: str, line: int, source: str) -> Case | Reject:
    """One labelled line, or the reason it cannot be used (kept in the reject file)."""
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as exc:
        return Reject(source, line, f"not JSON: {exc.msg} at column {exc.colno}", raw)
    if not isinstance(d, dict):
        return Reject(source, line, "a labelled case must be a JSON object", raw)
    missing = [f for f in FIELDS if f not in d]
    if missing:
        return Reject(source, line, f"missing field(s): {', '.join(missing)}", raw)
    if d["expected"] not in (True, False, None):
        return Reject(source, line, "expected must be true, false or null", raw)
    if not isinstance(d["completion"], str) or not isinstance(d["category"], str) or not d["category"]:
        return Reject(source, line, "completion and category must be strings", raw)
    task = d.get("task") or "math"
    if not isinstance(task, str):
        return Reject(source, line, "task must be a string", raw)
    question = d.get("question") or ""
    return Case(line, task, d["completion"], d["gold"], d["expected"], d["category"], str(d.get("why") or ""),
                question if isinstance(question, str) else "")


def read_cases(path: str, on_reject) -> list[Case]:
    cases = []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            c = parse_case(raw.rstrip("\n"), n, path)
            if isinstance(c, Reject):
                on_reject(c)
            else:
                cases.append(c)
    return cases


def grade_gradeset(cases: list[Case], workers: int = 1, timeout: float = 5.0, **opts: Any) -> list[bool | None]:
    """gradeset's verdict per case (None: timeout or error, which is no verdict)."""
    from gradeset.verify.groups import verify_groups

    groups = [{"prompt": c.question, "answer": c.gold, "task": c.task, "responses": [{"text": c.completion}]}
              for c in cases]
    verify_groups(groups, task="auto", workers=workers, timeout=timeout, **opts)
    out: list[bool | None] = []
    for g in groups:
        r = g["responses"][0]
        detail = (r.get("meta") or {}).get("verify_detail") or ""
        out.append(None if detail == "timeout" or detail.startswith("error") else bool(r.get("correct")))
    return out


def math_verify_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None


def grade_math_verify(cases: list[Case]) -> list[bool | None]:
    """math-verify's verdict on math cases (None for other tasks): parse(gold), parse(completion)."""
    import logging
    import warnings

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    out: list[bool | None] = []
    for c in cases:
        if c.task.lower() not in MATH_TASKS:
            out.append(None)
            continue
        gold = c.gold if isinstance(c.gold, str) else json.dumps(c.gold)
        if c.task.lower() in ("gsm8k", "gsm") and "####" in gold:
            gold = gold.rsplit("####", 1)[1].strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                g = parse(gold if "$" in gold or "\\boxed" in gold else f"${gold}$")
                out.append(bool(verify(g, parse(c.completion))))
            except Exception:
                out.append(False)
    return out


@dataclass
class Tally:
    cases: int = 0
    unlabelled: int = 0
    no_verdict: int = 0
    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0
    by_category: dict[str, Tally] = field(default_factory=dict)

    @property
    def right(self) -> int:
        return self.tp + self.tn

    def add(self, expected: bool | None, got: bool | None) -> None:
        self.cases += 1
        if expected is None:
            self.unlabelled += 1
        elif got is None:
            self.no_verdict += 1
            self.fn += expected
            self.tn += not expected
        elif got and expected:
            self.tp += 1
        elif got:
            self.fp += 1
        elif expected:
            self.fn += 1
        else:
            self.tn += 1

    def to_dict(self) -> dict:
        labelled = self.cases - self.unlabelled
        d = {"cases": self.cases, "labelled": labelled, "right": self.right, "false_positives": self.fp,
             "false_negatives": self.fn, "true_positives": self.tp, "true_negatives": self.tn,
             "no_verdict": self.no_verdict,
             "accuracy": self.right / labelled if labelled else None,
             "precision": self.tp / (self.tp + self.fp) if self.tp + self.fp else None,
             "recall": self.tp / (self.tp + self.fn) if self.tp + self.fn else None}
        if self.by_category:
            d["by_category"] = {k: v.to_dict() for k, v in sorted(self.by_category.items())}
        return d


def tally(cases: list[Case], verdicts: Iterable[bool | None]) -> Tally:
    total = Tally()
    for c, v in zip(cases, verdicts):
        total.add(c.expected, v)
        total.by_category.setdefault(c.category, Tally()).add(c.expected, v)
    return total


def audit(cases: list[Case], *, workers: int = 1, timeout: float = 5.0, math_verify: bool = True,
          **opts: Any) -> dict:
    """The report: per tool, totals and categories; mistakes listed false positives first."""
    ours = grade_gradeset(cases, workers=workers, timeout=timeout, **opts)
    tools = {"gradeset": tally(cases, ours).to_dict()}
    theirs: list[bool | None] | None = None
    if math_verify and math_verify_available():
        theirs = grade_math_verify(cases)
        math_cases = [(c, v) for c, v in zip(cases, theirs) if c.task.lower() in MATH_TASKS]
        tools["math-verify"] = tally([c for c, _ in math_cases], [v for _, v in math_cases]).to_dict()
        tools["math-verify"]["scope"] = "math tasks only"
    mistakes = []
    for i, (c, v) in enumerate(zip(cases, ours)):
        if c.expected is None or v == c.expected:
            continue
        mistakes.append({"line": c.line, "category": c.category, "expected": c.expected, "gradeset": v,
                         "math_verify": theirs[i] if theirs is not None else None,
                         "kind": "false positive" if v else "false negative", "why": c.why,
                         "gold": c.gold if isinstance(c.gold, str) else json.dumps(c.gold),
                         "completion_tail": c.completion[-160:]})
    mistakes.sort(key=lambda m: (m["kind"] != "false positive", m["line"]))
    return {"cases": len(cases), "tools": tools, "mistakes": mistakes}


def baseline_of(report: dict) -> dict:
    """What CI holds the grader to: right verdicts and false positives, in total and per category."""
    g = report["tools"]["gradeset"]
    return {"right": g["right"], "false_positives": g["false_positives"],
            "by_category": {k: {"right": v["right"], "false_positives": v["false_positives"]}
                            for k, v in g.get("by_category", {}).items()}}


def regressions(report: dict, baseline: dict) -> list[str]:
    """Ways the grader got worse than the baseline: more false positives in any category,
    fewer right verdicts in total. Empty when it did not."""
    now = baseline_of(report)
    out = []
    if now["right"] < baseline["right"]:
        out.append(f"right verdicts dropped: {now['right']} < baseline {baseline['right']}")
    for cat, base in baseline.get("by_category", {}).items():
        cur = now["by_category"].get(cat)
        if cur is None:
            out.append(f"category {cat!r} missing from the labelled set")
        elif cur["false_positives"] > base["false_positives"]:
            out.append(f"{cat}: false positives grew {base['false_positives']} -> {cur['false_positives']}")
    return out


def table(report: dict) -> str:
    """Categories as rows; gradeset and math-verify side by side."""
    tools = report["tools"]
    names = [n for n in ("gradeset", "math-verify") if n in tools]
    cats = sorted(tools["gradeset"].get("by_category", {}))

    def cell(t: dict | None) -> str:
        if not t or not t.get("labelled"):
            return f"{'-':>6}{'-':>5}{'-':>5}{'-':>7}{'-':>7}"
        p = "-" if t["precision"] is None else f"{t['precision']:.2f}"
        r = "-" if t["recall"] is None else f"{t['recall']:.2f}"
        return f"{t['right']:>3}/{t['labelled']:<3}{t['false_positives']:>4} {t['false_negatives']:>4} {p:>6} {r:>6}"

    width = max([len("category")] + [len(c) for c in cats] + [5])
    head = f"{'category':<{width}}" + "".join(f"  {n:<33}" for n in names)
    sub = f"{'':<{width}}" + "".join(f"  {'right':>6}{'FP':>5}{'FN':>5}{'prec':>7}{'recall':>7}   " for _ in names)
    lines = [head, sub, "-" * len(sub)]
    for c in cats:
        lines.append(f"{c:<{width}}" + "".join(f"  {cell(tools[n].get('by_category', {}).get(c))}   "
                                                 for n in names))
    lines.append("-" * len(sub))
    lines.append(f"{'total':<{width}}" + "".join(f"  {cell(tools[n])}   " for n in names))
    fps = [m for m in report["mistakes"] if m["kind"] == "false positive"]
    if fps:
        lines.append(f"gradeset false positives ({len(fps)}):")
        for m in fps[:20]:
            lines.append(f"  line {m['line']} [{m['category']}] gold {m['gold'][:40]!r}: {m['why'][:90]}")
    return "\n".join(lines)
