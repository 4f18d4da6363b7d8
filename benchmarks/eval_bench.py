"""Evaluation metrics: pass@k accuracy and speed, and compute_metrics throughput.

pass@k incumbents, both computing 1 - C(n-c, k) / C(n, k):

- ``numpy-product``: the estimator as the Codex paper's reference code computes it (numpy,
  ``1 - prod(1 - k / arange(n-c+1, n+1))``), which lm-eval and bigcode's harness use;
- ``math.comb``: the literal closed form with Python big integers, common in one-off scripts.

gradeset's ``pass_at_k`` is the same product in plain Python floats. Error is measured
against exact rational arithmetic (``fractions.Fraction``) on every (n, c, k) evaluated.
``compute_metrics`` throughput is measured on graded groups with parsed answers and
reasoning blocks (accuracy, pass@1/4/16, maj@1/4/16, thinking/answer share, breakdowns).

Run: python benchmarks/eval_bench.py [--groups 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradeset.evaluate import compute_metrics, pass_at_k  # noqa: E402


def numpy_product(n: int, c: int, k: int) -> float:
    import numpy as np

    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def comb_form(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def cases(count: int, n: int, ks: list[int], seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    return [(n, rng.randint(0, n), rng.choice(ks)) for _ in range(count)]


def time_fn(fn, items) -> tuple[float, list[float]]:
    started = time.perf_counter()
    out = [fn(*it) for it in items]
    return time.perf_counter() - started, out


def bench_pass_at_k(groups: int) -> list[dict]:
    rows = []
    for label, n, ks, count in (("n=16, k in {1,4,16}", 16, [1, 4, 16], groups),
                                ("n=200, k in {1,10,100}", 200, [1, 10, 100], max(1, groups // 10)),
                                ("n=1000, k=100", 1000, [100], max(1, groups // 100))):
        items = cases(count, n, ks, seed=n)
        truth = [exact(*it) for it in items]
        for name, fn in (("gradeset", pass_at_k), ("numpy-product", numpy_product), ("math.comb", comb_form)):
            try:
                secs, out = time_fn(fn, items)
                err = max(abs(Fraction(v) - t) for v, t in zip(out, truth, strict=True))
                rows.append({"case": label, "impl": name, "evals": count, "seconds": round(secs, 4),
                             "per_sec": round(count / secs), "max_abs_error": float(err)})
            except OverflowError as exc:
                rows.append({"case": label, "impl": name, "evals": count, "seconds": None, "per_sec": None,
                             "max_abs_error": None, "error": f"OverflowError: {exc}"})
    return rows


def graded_groups(count: int, size: int = 16, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        p = rng.random()
        responses = []
        for _ in range(size):
            ok = rng.random() < p
            ans = "42" if ok else str(rng.randint(0, 9))
            text = (f"<think>step {i}</think> \\boxed{{{ans}}}" if rng.random() < 0.5 else f"\\boxed{{{ans}}}")
            responses.append({"text": text, "parsed": ans if rng.random() < 0.95 else None,
                              "correct": ok, "score": 1.0 if ok else 0.0})
        out.append({"id": str(i), "task": rng.choice(["math", "gsm8k"]), "category": rng.choice("abcde"),
                    "difficulty": rng.choice(["easy", "medium", "hard"]), "responses": responses})
    return out


def bench_metrics(groups: int) -> dict:
    data = graded_groups(groups)
    started = time.perf_counter()
    m = compute_metrics(data, ks=[1, 4, 16])
    secs = time.perf_counter() - started
    return {"groups": groups, "responses": m["n_responses"], "seconds": round(secs, 3),
            "groups_per_sec": round(groups / secs), "responses_per_sec": round(m["n_responses"] / secs)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=20000)
    args = ap.parse_args()
    rows = bench_pass_at_k(args.groups)
    print(f"{'case':24} {'impl':14} {'evals':>7} {'seconds':>8} {'per sec':>10} {'max abs error':>14}")
    for r in rows:
        if r["seconds"] is None:
            print(f"{r['case']:24} {r['impl']:14} {r['evals']:>7} {'-':>8} {'-':>10} {r['error']:>14}")
            continue
        print(f"{r['case']:24} {r['impl']:14} {r['evals']:>7} {r['seconds']:>8.3f} {r['per_sec']:>10} "
              f"{r['max_abs_error']:>14.2e}")
    metrics = bench_metrics(max(1, args.groups // 4))
    print(f"\ncompute_metrics: {metrics['groups']} groups x 16 responses in {metrics['seconds']}s "
          f"({metrics['groups_per_sec']} groups/s, {metrics['responses_per_sec']} responses/s)")
    out = Path(__file__).resolve().parent / "results" / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"pass_at_k": rows, "compute_metrics": metrics}, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
