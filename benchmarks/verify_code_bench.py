"""Programs graded per second by the code verifier, with each isolation backend, same cores.

    python benchmarks/verify_code_bench.py [--n 200] [--workers 2] [--tests 3]

Each program is a completion with a ```python block (correct about half the time) graded
against ``--tests`` assert tests (split in the parent: one sandbox per program), and a
quarter of them are stdin/stdout programs with the same number of input/output pairs. Rows:
``bwrap`` and ``unshare`` (isolated), ``unsafe`` (``--unsafe-no-sandbox``: the same harness
without namespaces) and ``incumbent`` (the sandbox on ``main`` before issue 12: one
``python -I`` process per test, bubblewrap when present), all through the same worker pool.
Writes ``benchmarks/results/verify_code.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def programs(n: int, tests: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    groups = []
    for i in range(n):
        right = rng.random() < 0.5
        if i % 4 == 3:
            body = f"a, b = map(int, input().split())\nprint(a + b if {right} else a - b)"
            pairs = [(rng.randint(1, 99), rng.randint(1, 99)) for _ in range(tests)]
            gold = {"inputs": [f"{a} {b}\n" for a, b in pairs], "outputs": [f"{a + b}\n" for a, b in pairs]}
        else:
            body = f"def add(a, b):\n    return a + b if {right} else a - b"
            gold = [f"assert add({a}, {b}) == {a + b}" for a, b in
                    ((rng.randint(1, 99), rng.randint(1, 99)) for _ in range(tests))]
        groups.append({"prompt": f"p{i}", "answer": gold, "task": "code", "want": right,
                       "responses": [{"text": f"Here:\n```python\n{body}\n```"}]})
    return groups


def incumbent_dir() -> Path | None:
    """The code verifier as it was on ``main``, written from git into a folder workers can import."""
    old_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "gradeset_bench_incumbent"
    old_dir.mkdir(exist_ok=True)
    for part in ("sandbox", "code"):
        r = subprocess.run(["git", "show", f"main:gradeset/verify/{part}.py"], cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            return None
        (old_dir / f"gradeset_old_{part}.py").write_text(
            r.stdout.replace("from gradeset.verify.sandbox import", "from gradeset_old_sandbox import"))
    return old_dir


def run(name: str, groups: list[dict], workers: int, opts: dict) -> dict:
    import copy

    from gradeset.verify import verify_groups

    batch = copy.deepcopy(groups)
    t0 = time.perf_counter()
    out = verify_groups(batch, task=opts.pop("task", "code"), workers=workers, timeout=60, **opts)
    dt = time.perf_counter() - t0
    agree = sum(g["responses"][0]["correct"] is g["want"] for g in out)
    return {"backend": name, "programs": len(groups), "seconds": round(dt, 2),
            "programs_per_s": round(len(groups) / dt, 1), "agreement": f"{agree}/{len(groups)}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tests", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "verify_code.json"))
    args = ap.parse_args()
    import warnings

    from gradeset.verify.registry import register_verifier
    from gradeset.verify.sandbox import probe

    warnings.simplefilter("ignore", RuntimeWarning)
    groups = programs(args.n, args.tests)
    rows = []
    for name in ("bwrap", "unshare"):
        tool, why = probe(name, os.environ.get("PATH"))
        if tool:
            rows.append(run(name, groups, args.workers, {"sandbox": name}))
        else:
            rows.append({"backend": name, "skipped": why})
    rows.append(run("unsafe", groups, args.workers, {"unsafe_no_sandbox": True}))
    old_dir = incumbent_dir()
    if old_dir is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(old_dir), os.environ.get("PYTHONPATH", "")])
        sys.path.insert(0, str(old_dir))
        register_verifier("code_incumbent", "gradeset_old_code:CodeVerifier")
        rows.append(run("incumbent (main)", groups, args.workers, {"task": "code_incumbent"}))
    print(f"code verifier, {args.n} programs x {args.tests} tests, {args.workers} workers, "
          f"{os.cpu_count()} cores, uid {os.geteuid()}")
    print(f"{'backend':<18} {'programs/s':>10} {'seconds':>8} {'agreement':>10}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['backend']:<18} skipped: {r['skipped']}")
        else:
            print(f"{r['backend']:<18} {r['programs_per_s']:>10} {r['seconds']:>8} {r['agreement']:>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"n": args.n, "tests": args.tests, "workers": args.workers,
                                          "cores": os.cpu_count(), "machine": platform.platform(), "rows": rows},
                                         indent=2) + "\n")


if __name__ == "__main__":
    main()
