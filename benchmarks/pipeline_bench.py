"""End-to-end pipeline throughput and peak memory, in-process runner vs local Ray.

The pipeline is the quick start's shape on a bigger input: graded-group JSONL source ->
verify (math) -> exact dedup -> canonical shards + DPO pairs (trl-dpo) + GRPO prompts
(trl-prompt). Each run is a fresh ``gradeset run`` process; peak memory is the largest
sum of RSS over that process and all its descendants (verifier workers, Ray's raylet and
workers), sampled every 0.1 s. Memory of the in-process runner must stay flat as the
input grows: it holds one chunk at a time.

    python benchmarks/pipeline_bench.py                    # 100k, 1M, 4M responses; Ray on 100k
    python benchmarks/pipeline_bench.py --sizes 100k --ray-sizes 100k
    python benchmarks/pipeline_bench.py --ray-driver 100k,400k --nodes 1,2   # the Ray driver's cost
    python benchmarks/pipeline_bench.py --ray-driver 100k,400k --convert 100k  # + conversion vs pyarrow

``--ray-driver`` measures the Ray runner's driver (the ``gradeset run`` process alone,
separate from the raylets and workers of a ``ray start`` cluster on this machine): its
peak RSS and CPU seconds as the group count grows, and throughput on one vs two nodes.
``--convert N`` adds ``gradeset convert`` JSONL -> Parquet of N groups x 16 responses
against a plain pyarrow ``read_json`` + ``write_table`` script on the same file (the
``io_bench`` measurement, alternating runs, medians), so one table answers "is the
driver flat, do nodes add throughput, is conversion at pyarrow speed".
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


# -- the Ray runner's driver: what it costs as the data grows (issue 18) ------------------

DRIVER_STEPS = """  - verify: {task: math}
  - dedup: {method: exact}
  - balance: {bucket_caps: {all-wrong: 1000000}}
  - check: {group_size: 4, disable: [near_duplicates]}"""


def write_driver_pipeline(folder: Path, chunk: int) -> Path:
    """verify + dedup + balance (capped: a whole-stream step) + a stage check; no exports and no
    outputs.check, which still stream the written shards through the driver."""
    p = folder / "pipeline.yaml"
    p.write_text(f"source: {{path: source.jsonl}}\nsteps:\n{DRIVER_STEPS}\noutputs:\n  groups: out/groups\n"
                 f"run: {{chunk_size: {chunk}}}\n")
    return p


class LocalCluster:
    """``nodes`` Ray nodes on this machine (``ray start --block``, each in its own process group,
    unique port and temp dir), so the benchmark's driver is the ``gradeset`` process alone."""

    def __init__(self, nodes: int, cpus: int):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.tmp = tempfile.mkdtemp(prefix="gsb", dir="/tmp")  # short: Ray's socket paths must fit
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
        ray_bin = str(Path(sys.executable).with_name("ray"))
        per = max(1, cpus // nodes)
        common = ["--num-cpus", str(per), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        self.procs = [self._start([ray_bin, "start", "--block", "--head", "--port", str(self.port), "--temp-dir",
                                   self.tmp, "--include-dashboard", "false", *common])]
        self._wait(1)
        for _ in range(nodes - 1):
            self.procs.append(self._start([ray_bin, "start", "--block", "--address", self.address, *common]))
        self._wait(nodes)

    def _start(self, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def _wait(self, nodes: int, timeout: float = 120.0) -> None:
        code = (f"import ray; ray.init(address={self.address!r}, configure_logging=False, log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(nodes)]:
                return
            time.sleep(0.5)  # polling the cluster's node count, with a deadline
        raise SystemExit(f"Ray cluster did not reach {nodes} nodes")

    def stop(self) -> None:
        import signal

        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_driver(pipeline: Path, address: str) -> dict:
    """One ``gradeset run --runner ray --address``; the driver process's own peak RSS and CPU
    seconds (user + system, not its children), sampled every 0.1 s."""
    import psutil

    cmd = [sys.executable, "-m", "gradeset", "run", str(pipeline), "--runner", "ray", "--address", address,
           "--fresh", "-q"]
    env = dict(os.environ, GRADESET_NO_PROGRESS="1", RAY_DEDUP_LOGS="0", RAY_AUTH_MODE="disabled")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak, cpu = 0, 0.0
    done = threading.Event()

    def sample():
        nonlocal peak, cpu
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, ps.memory_info().rss)
                t = ps.cpu_times()
                cpu = t.user + t.system
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"ray run failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    summary = json.loads((pipeline.parent / "out" / "groups" / "run.json").read_text())
    return {"seconds": round(wall, 2), "driver_peak_rss_mb": round(peak / 2**20, 1),
            "driver_cpu_s": round(cpu, 2), "written": summary["written"]}


def driver_bench(args) -> int:
    sizes = [parse_size(s) for s in args.ray_driver.split(",") if s.strip()]
    node_counts = [int(n) for n in args.nodes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="gradeset-driver-bench-"))
    results = []
    try:
        for nodes in node_counts:
            cluster = LocalCluster(nodes, args.num_cpus)
            try:
                for groups in sizes:
                    folder = work / f"{label(groups)}-{nodes}"
                    folder.mkdir()
                    make_source(folder / "source.jsonl", groups * args.group_size, args.group_size)
                    r = run_driver(write_driver_pipeline(folder, args.chunk_size), cluster.address)
                    row = {"groups": groups, "responses": groups * args.group_size, "nodes": nodes, **r,
                           "groups_per_s": round(groups / r["seconds"])}
                    results.append(row)
                    print(f"{label(groups):>5} groups {nodes} node(s) {r['seconds']:>8.1f}s "
                          f"{row['groups_per_s']:>8,} groups/s driver {r['driver_peak_rss_mb']:>6.0f} MB "
                          f"{r['driver_cpu_s']:>6.1f} CPU s", file=sys.stderr, flush=True)
                    shutil.rmtree(folder, ignore_errors=True)
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| groups | nodes | seconds | groups/s | driver peak RSS (MB) | driver CPU (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {label(r['groups'])} | {r['nodes']} | {r['seconds']:.1f} | {r['groups_per_s']:,} | "
              f"{r['driver_peak_rss_mb']:.0f} | {r['driver_cpu_s']:.1f} |")
    growth = {}
    for nodes in node_counts:
        rows = sorted((r for r in results if r["nodes"] == nodes), key=lambda r: r["groups"])
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            growth[str(nodes)] = {"from": a["groups"], "to": b["groups"],
                                  "driver_rss_growth_mb": round(b["driver_peak_rss_mb"] - a["driver_peak_rss_mb"], 1),
                                  "driver_cpu_ratio": round(b["driver_cpu_s"] / max(a["driver_cpu_s"], 1e-9), 2)}
            print(f"\n{nodes} node(s), {label(a['groups'])} -> {label(b['groups'])} groups: driver RSS "
                  f"{growth[str(nodes)]['driver_rss_growth_mb']:+.0f} MB (target < 32), driver CPU x"
                  f"{growth[str(nodes)]['driver_cpu_ratio']} (target <= 1.5 for 4x rows)")
    conversion = convert_ratio(args) if args.convert else None
    out = Path(args.json if args.json != DEFAULT_JSON else str(ROOT / "benchmarks" / "results" /
                                                                  "pipeline_ray_driver.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "pipeline-ray-driver",
        "pipeline": "source -> verify(math) -> dedup(exact) -> balance(capped) -> check (stage) -> shards, on Ray",
        "group_size": args.group_size, "chunk_size": args.chunk_size, "cpus": args.num_cpus,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results, "growth": growth, "conversion": conversion}, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def convert_ratio(args) -> dict:
    """``gradeset convert`` vs plain pyarrow on one file (io_bench's measurement)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import io_bench

    n = parse_size(args.convert)
    work = Path(tempfile.mkdtemp(prefix="gradeset-convert-bench-"))
    try:
        r = io_bench.bench_convert(n, work, baseline_groups=min(n, 1000), repeats=args.convert_repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours, plain = r["gradeset"]["jsonl_to_parquet"], r["pyarrow"]["jsonl_to_parquet"]
    out = {"groups": n, "responses_per_group": 16, "input_bytes": r["input_bytes"], "repeats": args.convert_repeats,
           "gradeset_seconds": ours["seconds"], "pyarrow_seconds": plain["seconds"],
           "gradeset_cpu_s": ours["cpu_seconds"], "pyarrow_cpu_s": plain["cpu_seconds"],
           "gradeset_peak_rss_mib": ours["peak_rss_mib"], "pyarrow_peak_rss_mib": plain["peak_rss_mib"],
           "ratio_wall": r["convert_vs_pyarrow"], "ratio_cpu": r["convert_vs_pyarrow_cpu"],
           "same_rows_and_schema": r["same_rows_and_schema_as_pyarrow"]}
    print(f"\nconvert {label(n)} groups JSONL -> Parquet: gradeset {out['gradeset_seconds']:.1f}s vs pyarrow "
          f"{out['pyarrow_seconds']:.1f}s = {out['ratio_wall']}x wall, {out['ratio_cpu']}x CPU (target <= 1.5); "
          f"peak RSS {out['gradeset_peak_rss_mib']:.0f} vs {out['pyarrow_peak_rss_mib']:.0f} MiB")
    return out


DEFAULT_JSON = str(ROOT / "benchmarks" / "results" / "pipeline.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100k,1M,4M", help="responses per run, comma separated (in-process)")
    ap.add_argument("--ray-sizes", default="100k", help="sizes also run on local Ray ('' for none)")
    ap.add_argument("--group-size", type=int, default=4, help="responses per prompt")
    ap.add_argument("--chunk-size", type=int, default=2000, help="groups per chunk (= per shard)")
    ap.add_argument("--workers", type=int, default=1, help="verifier worker processes")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs for the local Ray instance")
    ap.add_argument("--json", default=DEFAULT_JSON)
    ap.add_argument("--ray-driver", default="",
                    help="instead: the Ray runner's driver cost at these group counts (e.g. 100k,400k) with "
                         "verify+dedup+balance+check, on a local cluster of --nodes nodes")
    ap.add_argument("--nodes", default="1,2", help="node counts for --ray-driver (CPUs split between them)")
    ap.add_argument("--convert", default="", help="with --ray-driver: also time gradeset convert vs plain pyarrow "
                                                  "on this many groups of 16 responses (e.g. 100k)")
    ap.add_argument("--convert-repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-dedup", action="store_true",
                    help="leave out exact dedup (whose index grows with the number of distinct prompts), to "
                         "see the runner's own memory")
    args = ap.parse_args(argv)
    if args.ray_driver:
        return driver_bench(args)

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
