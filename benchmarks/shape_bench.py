"""Shaping speed and memory: DPO pairs and seed 003 balancing over N graded groups.

gradeset streams groups through ``iter_dpo`` / ``Balancer``; the incumbent is the
pandas approach of seed 003's ``merge_sft_data.py`` (one row per completion, groupby
question, sample per bucket), which has to hold the whole table in memory. Both read
the same generated groups (4 responses each, scores 0/0.5/1 with ties) from an
in-memory generator, so the figures are shaping cost, not JSON parsing.

Each measurement runs in its own forked process; peak memory is that process's max
RSS minus its RSS before the run. Run: python benchmarks/shape_bench.py [--groups 1000000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADESET_NO_PROGRESS", "1")

WORDS = ["the", "a", "of", "to", "and", "is", "in", "that", "it", "for", "on", "with", "as", "add", "total", "sum", "then", "so", "we", "get", "answer"]


def groups(n: int, size: int = 4, seed: int = 0):
    """Graded groups, cheap to make (texts from a pool) so the generator costs little."""
    rng = random.Random(seed)
    pool = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(4096)]
    rand = rng.random
    for i in range(n):
        base = rand()
        rs = []
        for j in range(size):
            u = rand()
            s = 1.0 if u < base else (0.5 if u > 0.85 else 0.0)
            rs.append({"text": pool[(i * 7 + j * 131) & 4095], "score": s, "correct": s == 1.0,
                       "meta": {"sample_index": j}})
        yield {"id": f"{i:016x}", "prompt": f"Problem {i}: what is {i % 997} + {i % 13}?", "answer": str(i % 1010),
               "task": "math" if i % 3 else "trivia", "responses": rs}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---- gradeset ------------------------------------------------------------------------
def gradeset_dpo(n: int) -> dict:
    from gradeset.shape import iter_dpo

    stats: dict = {}
    pairs = sum(1 for _ in iter_dpo(groups(n), "best-worst", stats=stats))
    return {"out": pairs, "skipped_tied": stats.get("skipped_tied", 0)}


def gradeset_balance(n: int) -> dict:
    from gradeset.shape.balance import Balancer, iter_balance

    cap = max(1, n // 10)
    bal = Balancer(bucket_caps={"all-correct": cap, "all-wrong": cap}, per_prompt=2)
    out = sum(1 for _ in iter_balance(groups(n), bal))
    return {"out": out}


# ---- incumbent: pandas, as seed 003 does it -----------------------------------------
def _frame(n: int):
    import pandas as pd

    cols: dict[str, list] = {"question": [], "completion": [], "score": [], "correctness_label": [], "task": []}
    for g in groups(n):
        for r in g["responses"]:
            cols["question"].append(g["prompt"])
            cols["completion"].append(r["text"])
            cols["score"].append(r["score"])
            cols["correctness_label"].append(int(r["correct"]))
            cols["task"].append(g["task"])
    return pd.DataFrame(cols)


def pandas_dpo(n: int) -> dict:
    df = _frame(n)
    df = df.sort_values(["question", "score"], kind="stable")
    g = df.groupby("question", sort=False)
    best, worst = g.tail(1).set_index("question"), g.head(1).set_index("question")
    pairs = best.add_suffix("_chosen").join(worst.add_suffix("_rejected"))
    pairs = pairs[(pairs["score_chosen"] > pairs["score_rejected"])
                  & (pairs["completion_chosen"] != pairs["completion_rejected"])]
    return {"out": len(pairs)}


def pandas_balance(n: int) -> dict:
    df = _frame(n)
    cap = max(1, n // 10)
    mean = df.groupby("question")["correctness_label"].transform("mean")
    df["bucket"] = "mixed"
    df.loc[mean == 1.0, "bucket"] = "all-correct"
    df.loc[mean == 0.0, "bucket"] = "all-wrong"
    qs = df.drop_duplicates("question")[["question", "task", "bucket"]]
    keep = []
    for (_, bucket), part in qs.groupby(["task", "bucket"]):
        keep.append(part.sample(n=min(cap, len(part)), random_state=0) if bucket != "mixed" else part)
    import pandas as pd

    kept = df[df["question"].isin(pd.concat(keep)["question"])]
    kept = kept.groupby("question", group_keys=False).head(2)  # per-question downsample to 2
    return {"out": kept["question"].nunique()}


def generate_only(n: int) -> dict:
    return {"out": sum(1 for _ in groups(n))}


CASES = {
    ("generate", "input generator alone"): generate_only,
    ("dpo pairs", "gradeset"): gradeset_dpo,
    ("dpo pairs", "pandas (seed 003 style)"): pandas_dpo,
    ("balance", "gradeset"): gradeset_balance,
    ("balance", "pandas (seed 003 style)"): pandas_balance,
}


def _child(fn, n, q):
    base = rss_mb()
    t = time.perf_counter()
    res = fn(n)
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put({"seconds": sec, "peak_mb": peak, "delta_mb": peak - base, **res})


def measure(fn, n: int) -> dict:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, n, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--groups", type=int, default=1_000_000)
    ap.add_argument("--skip-incumbent", action="store_true")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "shape.json"))
    args = ap.parse_args()
    n = args.groups
    results = []
    for (task, impl), fn in CASES.items():
        if args.skip_incumbent and impl != "gradeset":
            continue
        r = measure(fn, n)
        r.update(task=task, impl=impl, groups=n, groups_per_s=round(n / r["seconds"]),
                 rows_per_s=round(n * 4 / r["seconds"]))
        results.append(r)
        print(f"  {task:10s} {impl:26s} {r['seconds']:8.2f}s  {r['groups_per_s']:>9,} groups/s  "
              f"{r['rows_per_s']:>10,} rows/s  peak +{r['delta_mb']:7.0f} MB  out {r['out']:,}", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"groups": n, "group_size": 4, "results": results}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
