"""Per-stage costs of the partitioned whole-stream programs (gradeset/distributed/programs).

For each program, on LocalExecutor (so it measures the algorithms, not Ray), it prints
CPU-seconds per million groups for the partitioned program and for the in-process step on
the same rows, and the bytes the program moves per million groups: rows or keys through
``group_reduce`` (the shuffle; orjson bytes, the Ray executor's encoding), partial values
through ``aggregate`` (pickled, what reaches the driver) and ``broadcast`` values. These are
the per-stage figures docs/pipelines.md scales to a 1B-response job.

Run: python benchmarks/partition_bench.py [--groups 20000] [--partitions 8]
Writes benchmarks/results/partition.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradeset.distributed.executor import ORD, LocalExecutor  # noqa: E402
from gradeset.distributed.programs import run_partitioned  # noqa: E402
from gradeset.steps import build_step  # noqa: E402

WORDS = ["what", "is", "the", "total", "cost", "if", "each", "item", "costs", "dollars", "and", "we", "buy", "more", "of", "them", "then", "sell", "half", "at", "a", "profit", "how", "many", "apples", "remain", "after", "she", "gives", "away", "some", "to", "friends"]


class MeteredExecutor(LocalExecutor):
    """LocalExecutor that counts the bytes each primitive would move between machines."""

    def __init__(self, partitions: int, seed: int = 0):
        super().__init__(partitions, seed)
        self.bytes = {"shuffle": 0, "to_driver": 0, "broadcast": 0}

    def group_reduce(self, ds, key, fn):
        self.bytes["shuffle"] += sum(len(orjson.dumps(r)) for b in ds.blocks for r in b)
        return super().group_reduce(ds, key, fn)

    def aggregate(self, ds, partial, merge, empty):
        def counted(rows):
            value = partial(rows)
            self.bytes["to_driver"] += len(pickle.dumps(value))
            return value
        return super().aggregate(ds, counted, merge, empty)

    def broadcast(self, value):
        self.bytes["broadcast"] += len(pickle.dumps(value))
        return value


def make_rows(n: int, size: int, seed: int = 0) -> list[dict]:
    """Math-like groups: ~10% exact repeats, ~5% near repeats (one word changed), 3 tasks."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(n):
        r = rng.random()
        if rows and r < 0.10:
            prompt = rows[rng.randrange(len(rows))]["prompt"]
        elif rows and r < 0.15:
            words = rows[rng.randrange(len(rows))]["prompt"].split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            prompt = " ".join(words)
        else:
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + f" {rng.randint(1, 999)}?"
        p = rng.random()
        responses = [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))),
                      "correct": (ok := rng.random() < p), "score": float(ok)} for _ in range(size)]
        rows.append({"id": f"g{i}", "prompt": prompt, "answer": str(i % 97), "task": f"t{i % 3}",
                     "responses": responses})
    return rows


PROGRAMS = [
    ("dedup exact", "dedup", {"method": "exact"}),
    ("dedup near", "dedup", {"method": "near"}),
    ("balance per_prompt", "balance", {"per_prompt": 4}),
    ("balance bucket caps", "balance", {"per_prompt": 4, "bucket_caps": "mixed=2000,*=500"}),
    ("balance task caps + ratios", "balance", {"bucket_ratios": "mixed=2,all-correct=1,all-wrong=1",
                                               "task_caps": "*=1500"}),
    ("sample n", "sample", {"n": 1000}),
    ("sample fraction", "sample", {"fraction": 0.1}),
    ("check", "check", {"group_size": 8}),
]


def run(groups: int, size: int, partitions: int) -> list[dict]:
    rows = make_rows(groups, size)
    results = []
    per_m = 1e6 / groups
    for label, name, params in PROGRAMS:
        step = build_step(name, params)
        data = copy.deepcopy(rows)
        t0 = time.process_time()
        out = [g for b in step.process(iter([data[i:i + 1024] for i in range(0, len(data), 1024)])) for g in b]
        if name == "check":
            step.report()
        t_in = time.process_time() - t0

        ex = MeteredExecutor(partitions)
        ds = ex.dataset([dict(r, **{ORD: i}) for i, r in enumerate(copy.deepcopy(rows))])
        t0 = time.process_time()
        got, _, _ = run_partitioned(build_step(name, params), ex, ds)
        n_out = len(got.rows())
        t_part = time.process_time() - t0
        assert n_out == len(out), (label, n_out, len(out))
        results.append({"program": label, "groups": groups, "responses_per_group": size, "partitions": partitions,
                        "groups_out": n_out, "cpu_s_per_m_in_process": round(t_in * per_m, 1),
                        "cpu_s_per_m_partitioned": round(t_part * per_m, 1),
                        **{f"{k}_mb_per_m": round(v * per_m / 1e6, 1) for k, v in ex.bytes.items()}})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=20000)
    ap.add_argument("--size", type=int, default=8, help="responses per group")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "partition.json"))
    args = ap.parse_args()
    results = run(args.groups, args.size, args.partitions)
    head = ["program", "cpu_s_per_m_in_process", "cpu_s_per_m_partitioned", "shuffle_mb_per_m",
            "to_driver_mb_per_m", "broadcast_mb_per_m"]
    print(f"{args.groups} groups x {args.size} responses, LocalExecutor({args.partitions}); per million groups")
    print("  ".join(f"{h:>26}" if i else f"{h:<28}" for i, h in enumerate(head)))
    for r in results:
        print("  ".join(f"{r[h]!s:>26}" if i else f"{r[h]:<28}" for i, h in enumerate(head)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"benchmark": "partition", "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
