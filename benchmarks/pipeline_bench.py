"""End-to-end pipeline throughput and peak memory, in-process runner vs local Ray.

The pipeline is the quick start's shape on a bigger input: graded-group JSONL source ->
verify (math) -> exact dedup -> canonical shards + DPO pairs (trl-dpo) + GRPO prompts
(trl-prompt). Each run is a fresh ``gradeset run`` process; peak memory is the largest
sum of RSS over that process and all its descendants (verifier workers, Ray's raylet and
workers), sampled every 0.1 s. Memory of the in-process runner must stay flat as the
input grows: it holds one chunk at a time.

    python benchmarks/pipeline_bench.py                    # 100k, 1M, 4M responses; Ray on 100k
    python benchmarks/pipeline_bench.py --sizes 100k --ray-sizes 100k
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def make_source(path: Path, responses: int, group_size: int, seed: int = 0) -> int:
    """Graded-later groups: arithmetic prompts, a mix of right and plausibly wrong answers."""
    import orjson

    rng = random.Random(seed)
    groups = responses // group_size
    with open(path, "wb") as fh:
        buf = bytearray()
        for i in range(groups):
            a, b = rng.randint(-10_000, 10_000), rng.randint(-10_000, 10_000)
            if i % 20 == 19:  # 5% repeated prompts, for dedup to find
                a, b = a % 97, b % 89
            c = a + b
            resp = []
            for j in range(group_size):
                ans = c if rng.random() < 0.5 else c + rng.choice((-1, 1, 10, -10))
                resp.append({"text": f"We add {a} and {b}. Step {j}: {a} + {b} = {ans}.\nThe answer is \\boxed{{{ans}}}"})
            buf += orjson.dumps({"prompt": f"What is {a} + {b}?", "answer": str(c), "task": "math",
                                 "responses": resp})
            buf += b"\n"
            if len(buf) > 1 << 22:
                fh.write(buf)
                buf.clear()
        fh.write(buf)
    return groups


def write_pipeline(folder: Path, chunk: int, workers: int, dedup: bool = True) -> Path:
    p = folder / "pipeline.yaml"
    dedup_step = "\n  - dedup: {method: exact}" if dedup else ""
    p.write_text(f"""source: {{path: source.jsonl}}
steps:
  - verify: {{task: math, workers: {workers}}}{dedup_step}
outputs:
  groups: out/groups
  exports:
    - {{path: out/dpo.jsonl, layout: trl-dpo, build: {{kind: dpo, strategy: correct-vs-incorrect}}}}
    - {{path: out/grpo.jsonl, layout: trl-prompt, build: {{kind: grpo}}}}
run: {{chunk_size: {chunk}}}
""")
    return p


def tree_rss(pid: int) -> int:
    try:
        import psutil  # comes with the 'ray' extra; without it only the largest child is measured
    except ImportError:
        return 0

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_once(pipeline: Path, runner: str, num_cpus: int | None) -> dict:
    cmd = [sys.executable, "-m", "gradeset", "run", str(pipeline), "--runner", runner, "--fresh", "-q"]
    if runner == "ray" and num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    env = dict(os.environ, GRADESET_NO_PROGRESS="1", RAY_DEDUP_LOGS="0")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if peak[0] == 0:  # no psutil: the largest resident set among finished children
        import resource

        peak[0] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if proc.returncode != 0:
        raise SystemExit(f"{runner} run failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    summary = json.loads((pipeline.parent / "out" / "groups" / "run.json").read_text())
    return {"seconds": round(wall, 2), "peak_rss_mb": round(peak[0] / 2**20, 1), "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100k,1M,4M", help="responses per run, comma separated (in-process)")
    ap.add_argument("--ray-sizes", default="100k", help="sizes also run on local Ray ('' for none)")
    ap.add_argument("--group-size", type=int, default=4, help="responses per prompt")
    ap.add_argument("--chunk-size", type=int, default=2000, help="groups per chunk (= per shard)")
    ap.add_argument("--workers", type=int, default=1, help="verifier worker processes")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs for the local Ray instance")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pipeline.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-dedup", action="store_true",
                    help="leave out exact dedup (whose index grows with the number of distinct prompts), to "
                         "see the runner's own memory")
    args = ap.parse_args(argv)

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    ray_sizes = {parse_size(s) for s in args.ray_sizes.split(",") if s.strip()}
    work = Path(tempfile.mkdtemp(prefix="gradeset-pipeline-bench-"))
    results = []
    try:
        for n in sizes:
            folder = work / label(n)
            folder.mkdir()
            groups = make_source(folder / "source.jsonl", n, args.group_size)
            pipeline = write_pipeline(folder, args.chunk_size, args.workers, dedup=not args.no_dedup)
            runners = ["local"] + (["ray"] if n in ray_sizes else [])
            for runner in runners:
                r = run_once(pipeline, runner, args.num_cpus)
                s = r["summary"]
                row = {"responses": n, "groups": groups, "runner": runner, "dedup": not args.no_dedup,
                       "seconds": r["seconds"],
                       "responses_per_s": round(n / r["seconds"]), "groups_per_s": round(groups / r["seconds"]),
                       "peak_rss_mb": r["peak_rss_mb"], "written_groups": s["written"],
                       "exports": {e["layout"]: e["rows"] for e in s["exports"]},
                       "source_mb": round((folder / "source.jsonl").stat().st_size / 2**20, 1)}
                results.append(row)
                print(f"{label(n):>5} {runner:<6} {row['seconds']:>8.1f}s {row['responses_per_s']:>10,} resp/s "
                      f"{row['peak_rss_mb']:>8.0f} MB", file=sys.stderr, flush=True)
            shutil.rmtree(folder / "out", ignore_errors=True)
            (folder / "source.jsonl").unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print("| responses | groups | runner | steps | seconds | responses/s | peak RSS (MB, process tree) |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for r in results:
        steps = "verify+dedup" if r["dedup"] else "verify"
        print(f"| {label(r['responses'])} | {r['groups']:,} | {r['runner']} | {steps} | {r['seconds']:.1f} | "
              f"{r['responses_per_s']:,} | {r['peak_rss_mb']:.0f} |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    # keep earlier rows of other sizes/variants, so the big sizes need not be rerun
    def key(r):
        return (r["responses"], r["runner"], r.get("dedup", True))

    if out.exists():
        new = {key(r) for r in results}
        old = [r for r in json.loads(out.read_text()).get("results", []) if key(r) not in new]
        results = sorted(old + results, key=lambda r: (not r.get("dedup", True), r["runner"], r["responses"]))
    out.write_text(json.dumps({
        "benchmark": "pipeline",
        "pipeline": "source -> verify(math) [-> dedup(exact)] -> shards + trl-dpo + trl-prompt",
        "group_size": args.group_size, "chunk_size": args.chunk_size, "verify_workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results}, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
