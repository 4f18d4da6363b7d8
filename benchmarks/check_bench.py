"""gradeset check vs seed 001's validation scripts on the same graded file.

Seed 001 (the incumbent) validates with three separate passes (group size, scores,
coverage) that json-load every line and print per-row problems. gradeset check runs 14
checks (including MinHash near duplicates, truncation, length outliers) in one streaming
pass and writes the HTML report. Run: python benchmarks/check_bench.py [--groups 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADESET_NO_PROGRESS", "1")


def make_file(path: Path, groups: int, size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = ["the", "a", "of", "to", "and", "is", "in", "that", "it", "for", "on", "with", "as", "was", "add",
             "total", "sum", "then", "so", "we", "get"]
    with open(path, "w") as fh:
        for i in range(groups):
            a, b = rng.randint(1, 999), rng.randint(1, 999)
            responses = []
            for _ in range(size):
                ok = rng.random() < 0.6
                text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))
                responses.append({"text": f"{text} \\boxed{{{a + b if ok else a + b + 1}}}",
                                  "score": float(ok) if rng.random() > 0.01 else None, "correct": ok,
                                  "meta": {"finish_reason": "length" if rng.random() < 0.01 else "stop"}})
            fh.write(json.dumps({"prompt": f"Problem {i}: what is {a} + {b}? Show your work.", "answer": str(a + b),
                                 "category": rng.choice(["add", "sub", "mul"]),
                                 "difficulty": rng.choice(["easy", "medium", "hard"]), "responses": responses}))
            fh.write("\n")


# ---- seed 001's checks, as written in the seed (three passes, print per problem)
def validate_group_sizes(filepath, expected_size=16):
    with open(filepath) as f:
        for i, line in enumerate(f, 1):
            data = json.loads(line)
            actual_size = len(data["responses"])
            if actual_size != expected_size:
                print(f"Line {i}: Expected {expected_size}, got {actual_size}")


def validate_scores(filepath):
    with open(filepath) as f:
        for i, line in enumerate(f, 1):
            data = json.loads(line)
            for j, response in enumerate(data["responses"]):
                score = response.get("score")
                if score is None:
                    print(f"Line {i}, Response {j}: Missing score")
                elif not (0.0 <= score <= 1.0):
                    print(f"Line {i}, Response {j}: Invalid score {score}")


def check_verification_coverage(filepath):
    total_responses = 0
    verified_responses = 0
    with open(filepath) as f:
        for line in f:
            data = json.loads(line)
            for response in data["responses"]:
                total_responses += 1
                if response.get("score") is not None:
                    verified_responses += 1
    coverage = verified_responses / total_responses * 100
    print(f"Verification coverage: {coverage:.1f}%")


TOOLS = {
    "seed": ("seed 001 scripts (3 checks, 3 passes)", 3),
    "gradeset": ("gradeset check (14 checks, 1 pass, HTML+JSON)", 14),
    "gradeset-nominhash": ("gradeset check without MinHash (13 checks)", 13),
}


def run_one(tool: str, data: str, size: int, tmp: str) -> None:
    """Child process: run one tool, print seconds and peak RSS as JSON."""
    import resource

    t0 = time.perf_counter()
    code = 0
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if tool == "seed":
            validate_group_sizes(data, size)
            validate_scores(data)
            check_verification_coverage(data)
        else:
            from gradeset.cli import main as gradeset_main

            extra = ["--report", f"{tmp}/report.html", "--json", f"{tmp}/r.json"] if tool == "gradeset" \
                else ["--disable", "near_duplicates"]
            code = gradeset_main(["check", data, "--group-size", str(size), "--quiet", *extra])
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mb": rss, "exit_code": code}))


def main() -> None:
    import subprocess

    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=5000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--run", nargs=4, metavar=("TOOL", "DATA", "SIZE", "TMP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        tool, data, size, tmp = args.run
        run_one(tool, data, int(size), tmp)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for groups in (args.groups, 4 * args.groups):
            data = Path(tmp) / f"graded-{groups}.jsonl"
            make_file(data, groups, args.size)
            mb = data.stat().st_size / 1e6
            for tool, (label, checks) in TOOLS.items():
                out = subprocess.run([sys.executable, __file__, "--run", tool, str(data), str(args.size), tmp],
                                     capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                n_resp = groups * args.size
                rows.append({"tool": label, "groups": groups, "responses": n_resp, "input_mb": round(mb, 1),
                             "checks": checks, **r, "responses_per_s": n_resp / r["seconds"]})
            report = Path(tmp) / "report.html"
            rows[-2]["report_kb"] = round(report.stat().st_size / 1e3)
    print(f"{'tool':<48} {'groups':>7} {'MB in':>6} {'checks':>6} {'seconds':>8} {'resp/s':>8} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['tool']:<48} {r['groups']:>7} {r['input_mb']:>6} {r['checks']:>6} {r['seconds']:>8.2f} "
              f"{r['responses_per_s']:>8.0f} {r['peak_rss_mb']:>11.0f}")
    out = Path(__file__).parent / "results" / "check.json"
    out.write_text(json.dumps({"size": args.size, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
