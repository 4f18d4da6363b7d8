"""I/O benchmark: gradeset's streaming conversion and arithmetic synth vs the incumbents.

Part 1 converts N GRPO groups (16 graded responses each) JSONL -> Parquet -> TRL
prompt-only JSONL, once with ``gradeset convert`` and once with a plain json + pandas
script (what people write by hand), each stage in its own subprocess so wall time
and peak RSS (``wait4`` rusage) are measured per stage.

Part 2 times ``gradeset synth arithmetic`` with its defaults (and with
``--allow-duplicates``, which writes the seed's ~400k rows) against seed 002's own
notebook code, reproduced verbatim below (only the output paths changed).

    python benchmarks/io_bench.py --groups 20000          # quick
    python benchmarks/io_bench.py --groups 1000000        # the full run

Prints a table and writes benchmarks/results/io.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# --------------------------------------------------------------------------- incumbents

PANDAS_TO_PARQUET = """
import json, sys
import pandas as pd
rows = [json.loads(line) for line in open(sys.argv[1])]
df = pd.DataFrame(rows)
df.to_parquet(sys.argv[2], index=False)
print(len(df))
"""

# The plain pyarrow script the Scale issue names as the bar: no validation, no reject file.
PYARROW_TO_PARQUET = """
import sys
import pyarrow.json as pj, pyarrow.parquet as pq
t = pj.read_json(sys.argv[1])
pq.write_table(t, sys.argv[2], compression="zstd")
print(t.num_rows)
"""

PANDAS_TO_PROMPTS = """
import sys
import pandas as pd
df = pd.read_parquet(sys.argv[1])
out = df.drop(columns=["responses"])
out.to_json(sys.argv[2], orient="records", lines=True, force_ascii=False)
print(len(out))
"""

# Seed 002's notebook, verbatim except the two output paths (argv) and the cell markers.
SEED002 = r'''
import random
import sys

calculation_template = """{question} The answer is {answer} because {calculation}."""

find_x_template = """{question},x=? The answer is {answer} because {calculation}."""

def generate_data(num_samples=100000, max_num=100, min_num=-100):
    operators = ['+', '-', '*', '/']
    data = []

    for op in operators:
        i = 0
        while i < num_samples:
            num1 = random.randint(1, max_num)
            num2 = random.randint(1, max_num)

            if op == '+':
                answer = num1 + num2
                if answer > max_num:
                    continue

                calculation = f"{num1}+{num2} equals {answer}"

                question = calculation_template.format(
                    question=f"{num1}{op}{num2}=?",
                    answer=answer,
                    calculation=calculation
                )

                find_x_question = find_x_template.format(
                    question=f"x-{num1}={num2}",
                    answer=answer,
                    calculation=calculation
                )

                question = {"positive": question, "negative": "Sorry, I don't know."}
                find_x_question = {"positive": find_x_question, "negative": "Sorry, I don't know."}

                data.append(question)
                data.append(find_x_question)
                i += 2

            elif op == '-':
                answer = num1 - num2
                if answer < min_num:
                    continue

                calculation = f"{num1}-{num2} equals {answer}"

                question = calculation_template.format(
                    question=f"{num1}{op}{num2}=?",
                    answer=answer,
                    calculation=calculation
                )

                find_x_question = find_x_template.format(
                    question=f"x+{num2}={num1}",
                    answer=answer,
                    calculation=calculation
                )
                find_x_question3 = find_x_template.format(
                    question=f"{num2}+x={num1}",
                    answer=answer,
                    calculation=calculation
                )
                find_x_question = random.choice([find_x_question, find_x_question3])

                find_x_question2 = find_x_template.format(
                    question=f"{num1}-x={num2}",
                    answer=answer,
                    calculation=calculation
                )

                question = {"positive": question, "negative": "Sorry, I don't know."}
                find_x_question = {"positive": find_x_question, "negative": "Sorry, I don't know."}
                find_x_question2 = {"positive": find_x_question2, "negative": "Sorry, I don't know."}

                data.append(question)
                data.append(find_x_question)
                data.append(find_x_question2)
                i += 3

            elif op == '*':
                answer = num1 * num2
                if answer > max_num:
                    continue

                calculation = f"{num1}*{num2} equals {answer}"

                question = calculation_template.format(
                    question=f"{num1}{op}{num2}=?",
                    answer=answer,
                    calculation=calculation
                )

                find_x_question = find_x_template.format(
                    question=f"x/{num2}={num1}",
                    answer=answer,
                    calculation=calculation
                )

                question = {"positive": question, "negative": "Sorry, I don't know."}
                find_x_question = {"positive": find_x_question, "negative": "Sorry, I don't know."}

                data.append(question)
                data.append(find_x_question)
                i += 2


            elif op == '/':
                if num2 > num1:
                    num1, num2 = num2, num1
                if num2 == 0:
                    continue

                answer = num1 // num2
                num1 = answer * num2

                if answer == 1:
                    if random.choice(["1", "2"]) == "1":
                        continue

                if answer < min_num:  # Skip if result below range
                    continue

                calculation = f"{num1}/{num2} equals {answer}"

                question = calculation_template.format(
                    question=f"{num1}{op}{num2}=?",
                    answer=answer,
                    calculation=calculation
                )

                find_x_question = find_x_template.format(
                    question=f"{num2}*x={num1}",
                    answer=answer,
                    calculation=calculation
                )
                find_x_question3 = find_x_template.format(
                    question=f"x*{num2}={num1}",
                    answer=answer,
                    calculation=calculation
                )
                find_x_question = random.choice([find_x_question, find_x_question3])

                find_x_question2 = find_x_template.format(
                    question=f"{num1}/x={num2}",
                    answer=answer,
                    calculation=calculation
                )

                question = {"positive": question, "negative": "Sorry, I don't know."}
                find_x_question = {"positive": find_x_question, "negative": "Sorry, I don't know."}
                find_x_question2 = {"positive": find_x_question2, "negative": "Sorry, I don't know."}

                data.append(question)
                data.append(find_x_question)
                data.append(find_x_question2)
                i += 3

    return data

# Generate training data (~400k samples)
data = generate_data()

import json

# Save training data to JSON Lines file
with open(sys.argv[1], "w") as f:
    for item in data:
        f.write(json.dumps(item) + "\n")

print(f"Saved {len(data)} training samples to dpo_data.json")

import json
import re

output_file = sys.argv[2]

processed_data = []

test_data = generate_data(100)

for item in test_data:
    positive = item["positive"]

    question_match = re.match(r'^(.+?)\s+The answer is', positive)
    if question_match:
        question = question_match.group(1)
    else:
        continue

    answer_match = re.search(r'The answer is (-?\d+)', positive)
    if answer_match:
        answer = int(answer_match.group(1))
    else:
        continue

    processed_data.append({"question": question, "answer": answer})

with open(output_file, "w") as f:
    for item in processed_data:
        f.write(json.dumps(item) + "\n")

print(f"Processed {len(processed_data)} test samples")
print(f"Sample: {processed_data[0]}")
'''

# --------------------------------------------------------------------------- measuring


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Wall seconds and peak RSS (MiB) of one subprocess, from wait4's rusage."""
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({proc.returncode}): {err[-2000:]}")
    return {"seconds": round(wall, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stderr_tail": err[-300:]}


def run_pair(a: list[str], b: list[str], repeats: int, env: dict | None = None) -> tuple[dict, dict]:
    """a and b run alternately, repeats times each: the medians (wall, CPU) and every run.

    Alternating keeps both under the same load when other jobs share the machine.
    """
    runs_a, runs_b = [], []
    for _ in range(repeats):
        runs_a.append(run_measured(a, env))
        runs_b.append(run_measured(b, env))

    def med(runs: list[dict]) -> dict:
        out = dict(runs[-1])
        out["seconds"] = round(statistics.median(r["seconds"] for r in runs), 3)
        out["cpu_seconds"] = round(statistics.median(r["cpu_seconds"] for r in runs), 3)
        out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        out["all_seconds"] = [r["seconds"] for r in runs]
        return out

    return med(runs_a), med(runs_b)


def make_groups(path: Path, n: int, k: int = 16, seed: int = 0) -> None:
    """n GRPO groups of k graded responses, like `gradeset verify` writes them."""
    import orjson

    rng = random.Random(seed)
    with open(path, "wb") as fh:
        buf = []
        for i in range(n):
            a, b = rng.randint(1, 999), rng.randint(1, 999)
            responses = []
            for j in range(k):
                guess = a + b + (0 if rng.random() < 0.6 else rng.randint(-3, 3))
                responses.append({
                    "text": f"Let me add {a} and {b}. {a} + {b} = {guess}. The answer is \\boxed{{{guess}}}.",
                    "score": float(guess == a + b), "correct": guess == a + b, "parsed": str(guess),
                    "meta": {"model": "bench-model", "temperature": 1.0, "finish_reason": "stop",
                             "tokens": 24 + j, "sample_index": j}})
            buf.append(orjson.dumps({"id": f"{i:012x}", "prompt": f"What is {a} + {b}?", "answer": str(a + b),
                                     "task": "math", "source": "bench", "responses": responses}) + b"\n")
            if len(buf) >= 10_000:
                fh.write(b"".join(buf))
                buf = []
        fh.write(b"".join(buf))


def bench_convert(n: int, work: Path, baseline_groups: int | None, repeats: int = 1) -> dict:
    src = work / "groups.jsonl"
    t0 = time.perf_counter()
    make_groups(src, n)
    result: dict = {"groups": n, "responses_per_group": 16, "input_bytes": src.stat().st_size,
                    "make_input_seconds": round(time.perf_counter() - t0, 1)}
    env = dict(os.environ, GRADESET_NO_PROGRESS="1")
    gs = [PY, "-m", "gradeset"]
    (work / "b3.py").write_text(PYARROW_TO_PARQUET)
    to_parquet, plain = run_pair(gs + ["convert", str(src), str(work / "ours.parquet")],
                                 [PY, str(work / "b3.py"), str(src), str(work / "pyarrow.parquet")], repeats, env)
    ours = {
        "jsonl_to_parquet": to_parquet,
        "parquet_to_trl_prompt": run_measured(gs + ["convert", str(work / "ours.parquet"), str(work / "ours.prompts.jsonl"),
                                                    "--to", "trl-prompt"], env),
    }
    result["gradeset"] = ours
    bsrc, bn = src, n
    if baseline_groups is not None and baseline_groups < n:
        bsrc, bn = work / "groups.small.jsonl", baseline_groups
        with open(src, "rb") as fi, open(bsrc, "wb") as fo:
            for i, line in enumerate(fi):
                if i >= bn:
                    break
                fo.write(line)
    (work / "b1.py").write_text(PANDAS_TO_PARQUET)
    (work / "b2.py").write_text(PANDAS_TO_PROMPTS)
    base = {
        "jsonl_to_parquet": run_measured([PY, str(work / "b1.py"), str(bsrc), str(work / "base.parquet")]),
        "parquet_to_trl_prompt": run_measured([PY, str(work / "b2.py"), str(work / "base.parquet"),
                                               str(work / "base.prompts.jsonl")]),
    }
    result["json_pandas"] = base
    result["json_pandas_groups"] = bn
    result["pyarrow"] = {"jsonl_to_parquet": plain}
    result["convert_vs_pyarrow"] = round(ours["jsonl_to_parquet"]["seconds"]
                                         / result["pyarrow"]["jsonl_to_parquet"]["seconds"], 2)
    result["convert_vs_pyarrow_cpu"] = round(ours["jsonl_to_parquet"]["cpu_seconds"]
                                             / result["pyarrow"]["jsonl_to_parquet"]["cpu_seconds"], 2)
    result["convert_repeats"] = repeats
    import pyarrow.parquet as pq

    a, b = pq.ParquetFile(work / "ours.parquet"), pq.ParquetFile(work / "pyarrow.parquet")
    result["same_rows_and_schema_as_pyarrow"] = (a.metadata.num_rows == b.metadata.num_rows
                                                 and a.schema_arrow == b.schema_arrow)
    for stages, count in ((ours, n), (base, bn), (result["pyarrow"], n)):
        for st in stages.values():
            st["groups_per_s"] = round(count / st["seconds"], 1)
            st["responses_per_s"] = round(count * 16 / st["seconds"], 1)
    # both outputs hold the same prompts
    with open(work / "ours.prompts.jsonl", "rb") as fh:
        first = json.loads(fh.readline())
    result["check_first_prompt"] = first["prompt"]
    return result


def bench_synth(work: Path, repeats: int) -> dict:
    (work / "seed002.py").write_text(SEED002)
    env = dict(os.environ, GRADESET_NO_PROGRESS="1")
    runs: dict[str, list[dict]] = {"seed002_notebook": [], "gradeset_defaults": [], "gradeset_allow_duplicates": []}
    for _ in range(repeats):
        runs["seed002_notebook"].append(run_measured([PY, str(work / "seed002.py"), str(work / "s.jsonl"),
                                                      str(work / "s_test.jsonl")]))
        runs["gradeset_defaults"].append(run_measured(
            [PY, "-m", "gradeset", "synth", "arithmetic", "--out", str(work / "g.jsonl"), "--test-out",
             str(work / "g_test.jsonl")], env))
        runs["gradeset_allow_duplicates"].append(run_measured(
            [PY, "-m", "gradeset", "synth", "arithmetic", "--out", str(work / "d.jsonl"), "--test-out",
             str(work / "d_test.jsonl"), "--allow-duplicates"], env))
    rows = {"seed002_notebook": work / "s.jsonl", "gradeset_defaults": work / "g.jsonl",
            "gradeset_allow_duplicates": work / "d.jsonl"}
    out: dict = {}
    for name, rs in runs.items():
        lines = rows[name].read_bytes().splitlines()
        prompts = {json.loads(x)["positive"].split(" The answer is")[0] for x in lines}
        out[name] = {"median_seconds": round(statistics.median(r["seconds"] for r in rs), 3),
                     "all_seconds": [r["seconds"] for r in rs],
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
                     "train_rows": len(lines), "distinct_prompts": len(prompts)}
    seed_t = out["seed002_notebook"]["median_seconds"]
    for name in ("gradeset_defaults", "gradeset_allow_duplicates"):
        out[name]["speedup_vs_seed002"] = round(seed_t / out[name]["median_seconds"], 2)
    seed_test = {json.loads(x)["question"] for x in (work / "s_test.jsonl").read_bytes().splitlines()}
    seed_train = {json.loads(x)["positive"].split(" The answer is")[0] for x in (work / "s.jsonl").read_bytes().splitlines()}
    g_test = {json.loads(x)["question"] for x in (work / "g_test.jsonl").read_bytes().splitlines()}
    out["seed002_notebook"]["test_prompts_in_train"] = len(seed_test & seed_train)
    out["gradeset_defaults"]["test_prompts_in_train"] = len(g_test & {
        json.loads(x)["positive"].split(" The answer is")[0] for x in (work / "g.jsonl").read_bytes().splitlines()})
    return out


def table(results: dict) -> str:
    lines = []
    c = results.get("convert")
    if c:
        lines.append(f"Convert {c['groups']:,} GRPO groups x16 responses ({c['input_bytes'] / 2**20:,.0f} MiB JSONL)"
                     + (f"; json+pandas on {c['json_pandas_groups']:,} groups" if c["json_pandas_groups"] != c["groups"]
                        else ""))
        lines.append(f"{'tool':<14}{'stage':<24}{'seconds':>10}{'CPU s':>8}{'groups/s':>12}{'responses/s':>14}"
                     f"{'peak RSS MiB':>14}")
        for tool in ("gradeset", "json_pandas", "pyarrow"):
            for stage, st in c.get(tool, {}).items():
                lines.append(f"{tool:<14}{stage:<24}{st['seconds']:>10.2f}{st.get('cpu_seconds', 0):>8.2f}"
                             f"{st['groups_per_s']:>12,.0f}{st['responses_per_s']:>14,.0f}{st['peak_rss_mib']:>14,.0f}")
        if "convert_vs_pyarrow" in c:
            lines.append(f"gradeset convert (validated, reject file) / plain pyarrow read_json+write_table: "
                         f"{c['convert_vs_pyarrow']:.2f}x the time"
                         + (f", {c['convert_vs_pyarrow_cpu']:.2f}x the CPU" if "convert_vs_pyarrow_cpu" in c else "")
                         + (f" (medians of {c['convert_repeats']} alternating runs)" if c.get("convert_repeats", 1) > 1
                            else ""))
    s = results.get("synth")
    if s:
        lines.append("")
        lines.append("synth arithmetic vs seed 002's notebook (median of runs, whole process incl. startup)")
        lines.append(f"{'run':<28}{'seconds':>9}{'speedup':>9}{'rows':>9}{'distinct':>10}{'test in train':>15}"
                     f"{'RSS MiB':>9}")
        for name, r in s.items():
            lines.append(f"{name:<28}{r['median_seconds']:>9.2f}{r.get('speedup_vs_seed002', 1.0):>9.2f}"
                         f"{r['train_rows']:>9,}{r['distinct_prompts']:>10,}{str(r.get('test_prompts_in_train', '-')):>15}"
                         f"{r['peak_rss_mib']:>9,.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=1_000_000, help="GRPO groups to convert (default 1M)")
    ap.add_argument("--baseline-groups", type=int, default=None,
                    help="run json+pandas on only the first N groups (it holds everything in memory)")
    ap.add_argument("--synth-repeats", type=int, default=3)
    ap.add_argument("--convert-repeats", type=int, default=1,
                    help="run gradeset convert and the plain pyarrow script alternately this many times (medians)")
    ap.add_argument("--skip-convert", action="store_true")
    ap.add_argument("--skip-synth", action="store_true")
    ap.add_argument("--workdir", help="scratch folder (default: a temp folder, removed afterwards)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "io.json"))
    args = ap.parse_args(argv)
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "platform": platform.platform(),
                                 "load_avg_at_start": os.getloadavg()}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                                 time.gmtime())}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        if not args.skip_synth:
            results["synth"] = bench_synth(work, args.synth_repeats)
            print(table({"synth": results["synth"]}), flush=True)
        if not args.skip_convert:
            results["convert"] = bench_convert(args.groups, work, args.baseline_groups, args.convert_repeats)
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    print()
    print(table(results))
    print(f"load average (1, 5, 15 min) at start {results['machine']['load_avg_at_start']}, "
          f"at end {results['machine']['load_avg_at_end']} on {results['machine']['cpus']} CPUs")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
