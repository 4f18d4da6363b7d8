"""In-process cost of hostile completions (issue 12.4): answer extraction must be linear.

    python benchmarks/verify_hostile_bench.py [--size 1000000] [--timeout 60]

Each hostile text (built to the given size, default 1 MB) is graded in-process by every
text verifier (``get_verifier(task)(text, gold)``, no worker pool, no time limit), once at
the full size and once at a tenth of it: linear work grows about 10x between the two,
quadratic work about 100x. Prints a table of milliseconds and the growth factor, writes
``benchmarks/results/verify_hostile.json``. Each call runs in a child process killed at
``--timeout`` seconds, so a regression shows as "timeout" instead of hanging the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TASKS = ("math", "gsm8k", "mcq", "trivia")


def hostile_cases(size: int) -> dict[str, str]:
    """name -> completion of about ``size`` characters (the patterns of issue 12.4)."""
    def rep(unit: str, tail: str = "") -> str:
        return unit * max(1, size // len(unit)) + tail

    return {
        "answer+200 spaces+!": rep("answer" + " " * 200 + "!"),
        "nested \\boxed{ (unclosed)": rep("\\boxed{"),
        "nested \\boxed{ (closed)": rep("\\boxed{", "1") + "}" * (size // 7),
        "nested parentheses in a box": "\\boxed{" + "(" * (size // 2) + "1" + ")" * (size // 2) + "}",
        "60 nested parentheses": "The answer is \\boxed{" + "(" * 60 + "x+1" + ")" * 60 + "}",
        "\\text{} with spaces": "\\boxed{5\\text{" + " " * size + "}}",
        "10k-style nested braces": "\\boxed{" + "{" * (size // 2) + "1" + "}" * (size // 2) + "}",
        "digits": "The answer is " + "9" * size,
        "digits and commas": "The total is " + rep("1,"),
        "spaces then box": " " * size + "\\boxed{5}",
        "answer is repeated": rep("the answer is "),
        "dollar signs": rep("$"),
        "chat tokens": rep("</s>", "\\boxed{5}"),
        "unicode roots": rep("√("),
        "list markers": rep("1.\n2.\n"),
        "sentence ends": rep("x. "),
    }


def _one(task: str, text: str, q) -> None:
    from gradeset.verify import get_verifier

    v = get_verifier(task)
    gold = "A" if task == "mcq" else "5"
    for warm in ("The answer is \\boxed{\\sin(x)+1}", "The answer is (A).", "#### 5"):
        v(warm, gold)  # imports and regex compilation are not the cost being measured
    t0 = time.perf_counter()
    v(text, gold)
    q.put((time.perf_counter() - t0) * 1000)


def timed(task: str, text: str, timeout: float) -> float | None:
    ctx = get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_one, args=(task, text, q))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        return None
    return q.get() if not q.empty() else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    big, small = hostile_cases(args.size), hostile_cases(args.size // 10)
    rows = []
    print(f"{'case':32} {'task':7} {'ms @' + str(args.size):>12} {'ms @' + str(args.size // 10):>12} {'growth':>7}")
    for name in big:
        for task in TASKS:
            ms_big = timed(task, big[name], args.timeout)
            ms_small = timed(task, small[name], args.timeout)
            growth = ms_big / ms_small if ms_big and ms_small and ms_small > 0.05 else None
            rows.append({"case": name, "task": task, "chars": len(big[name]), "ms": ms_big,
                         "ms_tenth": ms_small, "growth": growth})
            fmt = lambda v: "timeout" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"{name:32} {task:7} {fmt(ms_big):>12} {fmt(ms_small):>12} "
                  f"{'' if growth is None else f'{growth:.1f}x':>7}", flush=True)
    out = Path(__file__).parent / "results" / "verify_hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    worst = max((r["ms"] for r in rows if r["ms"] is not None), default=None)
    out.write_text(json.dumps({"size": args.size, "rows": rows, "worst_ms": worst,
                               "timeouts": sum(r["ms"] is None for r in rows)}, indent=2))
    print(f"worst {worst:.1f} ms; timeouts {sum(r['ms'] is None for r in rows)}; wrote {out}")


if __name__ == "__main__":
    main()
