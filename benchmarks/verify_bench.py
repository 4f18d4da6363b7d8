"""Grade the same realistic completions with gradeset and with math-verify, same cores.

    python benchmarks/verify_bench.py [--n 20000] [--workers 2] [--stream 1000000] [--hard-repeat 1]

Prints calls/s for both, their agreement (and where they disagree, by answer kind),
then streams ``--stream`` responses through gradeset's grader in batches and reports
peak memory at 100k and at the end (flat memory = streaming, nothing accumulates).
A second section grades ``tests/data/verify/hard_answers.jsonl`` (competition-style
answers: polynomials in several variables, rational functions, tuples and sets of
expressions, intervals with parameters, function definitions, equations, trigonometric
values) with both tools on the same number of processes, and reports calls/s, the ratio,
agreement with the labels and how many verdicts each path (exact / symbolic) decided.
Writes ``benchmarks/results/verify.json``.

The completions are generated deterministically (seeded): long step-by-step reasoning
full of intermediate numbers, then a final answer that is right about half the time,
written in the many equivalent forms models use (\\dfrac vs decimal, \\sqrt{12} vs
2\\sqrt{3}, \\left[ ... \\right), \\text{}, units, thousands separators), plus symbolic
expressions, multiple choice letters, and truncated completions with no final answer.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("First we note that", "Then", "Next, multiplying both sides gives", "Subtracting, we get",
         "So the intermediate value is", "Checking the case", "By symmetry", "Adding these up gives")


def reasoning(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        out.append(f"{rng.choice(WORDS)} ${a} + {b} = {a + b}$ and ${a} \\cdot {b} = {a * b}$.")
    return " ".join(out)


def _frac_tex(q: Fraction, style: str) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\{style}{{{abs(q.numerator)}}}{{{q.denominator}}}"


def make_case(rng: random.Random, i: int) -> tuple[str, str, str]:
    """(kind, gold, completion)."""
    kind = rng.choices(["integer", "fraction", "radical", "interval", "text", "decimal", "symbolic",
                        "mcq", "truncated"], weights=[30, 14, 12, 8, 8, 10, 6, 6, 6])[0]
    right = rng.random() < 0.5
    body = reasoning(rng, rng.randint(6, 20))
    if kind == "integer":
        g = rng.randint(-500, 5000)
        p = g if right else g + rng.choice([-2, -1, 1, 3, 10])
        gold = str(g)
        ans = rng.choice([f"{p}", f"{p:,}" if abs(p) >= 1000 else f"{p}", f"{p}.0", f"\\text{{{p}}}"])
    elif kind == "fraction":
        q = Fraction(rng.randint(1, 40), rng.randint(2, 41))
        p = q if right else q + Fraction(1, rng.randint(2, 9))
        gold = _frac_tex(q, "frac")
        k = rng.randint(1, 3)
        ans = rng.choice([_frac_tex(p, "frac"), _frac_tex(p, "dfrac"),
                          f"\\frac{{{p.numerator * k}}}{{{p.denominator * k}}}", f"{p.numerator}/{p.denominator}",
                          f"{float(p):.6f}"])
    elif kind == "radical":
        a, n = rng.randint(1, 9), rng.choice([2, 3, 5, 6, 7, 10])
        m = n if right else n + 1
        gold = f"{a}\\sqrt{{{n}}}" if a > 1 else f"\\sqrt{{{n}}}"
        ans = rng.choice([f"{a}\\sqrt{{{m}}}", f"\\sqrt{{{a * a * m}}}", f"{a} \\sqrt {m}",
                          f"\\frac{{{2 * a}\\sqrt{{{m}}}}}{{2}}"])
    elif kind == "interval":
        lo, hi = sorted(rng.sample(range(-20, 30), 2))
        lb, rb = rng.choice("[("), rng.choice("])")
        gold = f"{lb}{lo}, {hi}{rb}"
        plo = lo if right else lo - 1
        ans = rng.choice([f"{lb}{plo}, {hi}{rb}", f"\\left{lb}{plo},{hi}\\right{rb}"])
        if rng.random() < 0.2:
            gold, ans = f"(-\\infty, {hi}{rb}", f"(-\\infty, {hi if right else hi + 1}{rb}"
    elif kind == "text":
        words = ["Monday", "blue", "north", "triangle", "even", "Alice", "yes", "no"]
        w = rng.choice(words)
        gold = w
        p = w if right else rng.choice([x for x in words if x != w])
        ans = rng.choice([f"\\text{{{p}}}", p, p.lower(), f"\\textbf{{{p}}}"])
    elif kind == "decimal":
        v = round(rng.uniform(0, 500), 2)
        p = v if right else round(v + 0.5, 2)
        form = rng.choice(["plain", "dollar", "percent", "unit"])
        gold = {"plain": f"{v}", "dollar": f"{v}", "percent": f"{v}\\%", "unit": f"{v}"}[form]
        ans = {"plain": f"{p}", "dollar": f"\\${p}", "percent": f"{p}\\%", "unit": f"{p} \\text{{ cm}}"}[form]
    elif kind == "symbolic":
        a = rng.randint(1, 9)
        gold = f"x^2 + {2 * a}x + {a * a}"
        ans = f"(x+{a})^2" if right else f"(x+{a + 1})^2"
    elif kind == "mcq":
        letter = rng.choice("ABCD")
        gold = letter
        ans = letter if right else rng.choice([x for x in "ABCD" if x != letter])
    else:  # truncated: long reasoning, no final answer
        gold = str(rng.randint(1, 100))
        return kind, gold, body + " " + reasoning(rng, 10) + " so now we need to consider the case where"
    closing = rng.choice(["Therefore, the final answer is $\\boxed{%s}$.", "So the answer is \\boxed{%s}.",
                          "\\[\\boxed{%s}\\]"])
    return kind, gold, body + "\n\n" + (closing % ans)


def cases(n: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        yield make_case(rng, i)


# ----------------------------------------------------------------- math-verify side
def _mv_init():
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)


def _mv_grade(item: tuple[str, str]) -> bool:
    from math_verify import parse, verify

    gold, pred = item
    try:
        return bool(verify(parse(f"${gold}$"), parse(pred)))
    except Exception:
        return False


def run_math_verify(items: list[tuple[str, str, str]], workers: int) -> tuple[list[bool], float]:
    pairs = [(g, c) for _, g, c in items]
    with get_context("fork").Pool(workers, initializer=_mv_init) as pool:
        pool.map(_mv_grade, pairs[: workers * 4])  # warm up imports in every process
        t0 = time.perf_counter()
        out = pool.map(_mv_grade, pairs, chunksize=64)
        elapsed = time.perf_counter() - t0
    return out, elapsed


def run_gradeset(items: list[tuple[str, str, str]], workers: int, timeout: float) -> tuple[list[bool], float]:
    from gradeset.verify.groups import Grader

    groups = [{"prompt": "", "answer": g, "responses": [{"text": c}]} for _, g, c in items]
    grader = Grader(task="math", workers=workers, timeout=timeout)
    try:
        # start the workers and load sympy in each (math-verify's pool is warmed the same way)
        grader.grade([{"answer": "\\sin(x)", "responses": [{"text": "\\boxed{\\sin(x)}"}] * 64}])
        t0 = time.perf_counter()
        for i in range(0, len(groups), 2048):
            grader.grade(groups[i:i + 2048])
        elapsed = time.perf_counter() - t0
    finally:
        grader.close()
    return [g["responses"][0]["correct"] for g in groups], elapsed


# ----------------------------------------------------------------- hard answers
HARD = Path(__file__).resolve().parents[1] / "tests" / "data" / "verify" / "hard_answers.jsonl"


def hard_items(repeat: int = 1) -> list[tuple[str, str, str, bool]]:
    rows = [json.loads(x) for x in HARD.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [(r["kind"], r["gold"], r["completion"], r["expected"]) for _ in range(repeat) for r in rows]


def run_hard(workers: int, timeout: float, repeat: int, with_math_verify: bool) -> dict:
    from gradeset.verify.groups import Grader

    items = hard_items(repeat)
    groups = [{"prompt": "", "answer": g, "responses": [{"text": c}]} for _, g, c, _ in items]
    grader = Grader(task="math", workers=workers, timeout=timeout)
    try:
        grader.grade([{"answer": "\\sin(x)", "responses": [{"text": "\\boxed{\\sin(x)}"}] * 64}])  # warm workers
        t0 = time.perf_counter()
        for i in range(0, len(groups), 2048):
            grader.grade(groups[i:i + 2048])
        gs_s = time.perf_counter() - t0
    finally:
        grader.close()
    gs = [g["responses"][0]["correct"] for g in groups]
    paths: dict[str, int] = {}
    for g in groups:
        p = g["responses"][0].get("meta", {}).get("verify_path", "none")
        paths[p] = paths.get(p, 0) + 1
    n = len(items)
    out = {"n": n, "unique": n // max(1, repeat), "workers": workers, "gradeset_seconds": gs_s,
           "gradeset_calls_per_s": n / gs_s, "gradeset_right": sum(a == e for a, (_, _, _, e) in zip(gs, items)) / n,
           "gradeset_paths": paths}
    print(f"\nhard answers ({n} calls, {out['unique']} unique, {workers} processes each)")
    print(f"{'tool':<12}{'calls/s':>12}{'seconds':>10}{'right':>10}")
    print(f"{'gradeset':<12}{n / gs_s:>12.0f}{gs_s:>10.2f}{out['gradeset_right']:>10.3f}   paths {paths}")
    if with_math_verify:
        mv, mv_s = run_math_verify([(k, g, c) for k, g, c, _ in items], workers)
        out.update({"math_verify_seconds": mv_s, "math_verify_calls_per_s": n / mv_s,
                    "math_verify_right": sum(a == e for a, (_, _, _, e) in zip(mv, items)) / n,
                    "speedup": mv_s / gs_s})
        print(f"{'math-verify':<12}{n / mv_s:>12.0f}{mv_s:>10.2f}{out['math_verify_right']:>10.3f}")
        print(f"hard-answer speed-up {mv_s / gs_s:.1f}x")
    return out


# ----------------------------------------------------------------- streaming memory
def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stream(total: int, workers: int, timeout: float, group_size: int = 16) -> dict:
    from gradeset.verify.groups import Grader

    grader = Grader(task="math", workers=workers, timeout=timeout)
    marks: dict[str, float] = {}
    done = 0
    gen = cases(total // group_size + 1, seed=1)
    t0 = time.perf_counter()
    try:
        rng = random.Random(2)
        while done < total:
            batch = []
            for _ in range(256):
                if done + sum(len(g["responses"]) for g in batch) >= total:
                    break
                try:
                    kind, gold, completion = next(gen)
                except StopIteration:
                    break
                head, _, tail = completion.rpartition("\n\n")
                sentences = head.split(". ")
                responses = []
                for _ in range(group_size):  # 16 samples for one prompt: same answer, varied reasoning
                    rng.shuffle(sentences)
                    responses.append({"text": ". ".join(sentences) + "\n\n" + tail})
                batch.append({"prompt": "", "answer": gold, "responses": responses})
            if not batch:
                break
            grader.grade(batch)  # graded groups are dropped here, as a writer would
            done += sum(len(g["responses"]) for g in batch)
            if done >= 100_000 and "at_100k" not in marks:
                marks["at_100k"] = _rss_mb()
                marks["workers_at_100k"] = max((_rss_mb(w.proc.pid) for w in grader.pool.workers), default=0)
        marks["at_end"] = _rss_mb()
        marks["workers_at_end"] = max((_rss_mb(w.proc.pid) for w in grader.pool.workers), default=0)
    finally:
        grader.close()
    marks["responses"] = done
    marks["seconds"] = time.perf_counter() - t0
    return marks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2, help="processes for both tools")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--stream", type=int, default=1_000_000, help="responses for the memory test (0: skip)")
    ap.add_argument("--skip-math-verify", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "verify.json"), help="result JSON")
    ap.add_argument("--hard-repeat", type=int, default=1,
                    help="passes over the hard-answer file (0: skip that section)")
    args = ap.parse_args()

    items = list(cases(args.n))
    gs_out, gs_s = run_gradeset(items, args.workers, args.timeout)
    result = {"n": args.n, "workers": args.workers, "gradeset_seconds": gs_s, "gradeset_calls_per_s": args.n / gs_s}
    print(f"{'tool':<12}{'calls/s':>12}{'seconds':>10}{'accuracy':>10}")
    print(f"{'gradeset':<12}{args.n / gs_s:>12.0f}{gs_s:>10.2f}{sum(gs_out) / args.n:>10.3f}")
    if not args.skip_math_verify:
        mv_out, mv_s = run_math_verify(items, args.workers)
        print(f"{'math-verify':<12}{args.n / mv_s:>12.0f}{mv_s:>10.2f}{sum(mv_out) / args.n:>10.3f}")
        agree = sum(a == b for a, b in zip(gs_out, mv_out)) / args.n
        by_kind: dict[str, list[int]] = {}
        for (kind, _, _), a, b in zip(items, gs_out, mv_out):
            s = by_kind.setdefault(kind, [0, 0])
            s[0] += 1
            s[1] += a != b
        print(f"speed-up {mv_s / gs_s:.1f}x, agreement {agree:.2%}")
        print("disagreements by kind: " + ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(by_kind.items())))
        examples = [(k, g, c[-80:], a, b) for (k, g, c), a, b in zip(items, gs_out, mv_out) if a != b][:10]
        result.update({"math_verify_seconds": mv_s, "math_verify_calls_per_s": args.n / mv_s,
                       "speedup": mv_s / gs_s, "agreement": agree,
                       "disagreements_by_kind": {k: v[1] for k, v in by_kind.items()},
                       "disagreement_examples": examples})
    if args.hard_repeat:
        result["hard"] = run_hard(args.workers, args.timeout, args.hard_repeat, not args.skip_math_verify)
        if "speedup" in result:
            print(f"easy-mix speed-up {result['speedup']:.1f}x, hard-answer speed-up "
                  f"{result['hard'].get('speedup', float('nan')):.1f}x")
    if args.stream:
        m = stream(args.stream, args.workers, args.timeout)
        print(f"stream {m['responses']} responses in {m['seconds']:.0f}s: peak RSS parent "
              f"{m.get('at_100k', float('nan')):.0f} MB at 100k, {m['at_end']:.0f} MB at end; "
              f"workers {m.get('workers_at_100k', float('nan')):.0f} MB / {m['workers_at_end']:.0f} MB")
        result["stream"] = m
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
