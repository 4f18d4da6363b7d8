#!/usr/bin/env python
"""Seed 004's SFT-vs-GRPO comparison, end to end, with gradeset commands only.

    eval base -> train sft (LoRA) -> eval -> train grpo from the SFT run -> eval
    [--traces: GRPO traces (first correct of 5, reference fallback) -> train sft on them -> eval]
    -> print the metrics table

Every step is a plain ``gradeset`` command (printed before it runs), so the recipe can
be copied into a shell script. With no ``--model`` it builds the tiny local test model
and finishes in a few minutes on a CPU; the numbers then only show that the plumbing
works (a random 8-dimensional model solves nothing). On a GPU machine pass a real model
folder and GSM8K files; see README.md for the flags.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# seed 004's output format
SYSTEM_PROMPT = (
    "You are given a problem. Think about the problem and provide your working out. "
    "Place it between <start_working_out> and <end_working_out>. "
    "Then, provide your solution between <SOLUTION></SOLUTION>"
)


def arithmetic(n: int, seed: int) -> list[dict]:
    """GSM8K-shaped word problems with worked solutions (``#### n``), for the CPU run."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c = rng.randint(2, 20), rng.randint(2, 20), rng.randint(2, 9)
        q = f"Sam has {a} apples and buys {b} more bags of {c} apples each. How many apples does Sam have?"
        work = f"Sam buys {b} * {c} = {b * c} apples. {a} + {b * c} = {a + b * c}."
        rows.append({"question": q, "answer": f"{work}\n#### {a + b * c}"})
    return rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def seed004_sft_rows(gsm8k_rows: list[dict]) -> list[dict]:
    """GSM8K solutions rewritten into seed 004's tags, as conversational prompt/completion rows."""
    out = []
    for r in gsm8k_rows:
        work, _, final = r["answer"].rpartition("####")
        work = re.sub(r"<<[^>]*>>", "", work).strip()  # GSM8K's calculator annotations
        completion = f"<start_working_out>{work}<end_working_out><SOLUTION>{final.strip()}</SOLUTION>"
        out.append({"prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                               {"role": "user", "content": r["question"]}],
                    "completion": [{"role": "assistant", "content": completion}]})
    return out


def gradeset(*args: str, log: list[str]) -> None:
    cmd = [sys.executable, "-m", "gradeset", *args]
    shown = "gradeset " + " ".join(shlex.quote(a) for a in args)
    print(f"\n$ {shown}", flush=True)
    log.append(shown)
    started = time.time()
    subprocess.run(cmd, check=True, cwd=REPO)
    print(f"  ({time.time() - started:.1f}s)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="base model folder (default: build the tiny CPU test model)")
    p.add_argument("--train-data", help="GSM8K-style question/answer JSONL (default: generated arithmetic)")
    p.add_argument("--test-data", help="GSM8K-style question/answer JSONL for evaluation")
    p.add_argument("--out", default=str(REPO / "outputs" / "sft_vs_grpo"), help="run folder")
    p.add_argument("--train-samples", type=int, default=64, help="seed 004's TRAIN_SAMPLES")
    p.add_argument("--eval-samples", type=int, default=16, help="seed 004's EVAL_SAMPLES")
    p.add_argument("--sft-steps", type=int, default=20)
    p.add_argument("--grpo-steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-3, help="LoRA learning rate (5e-3 suits the tiny model; "
                                                        "use 2e-4 for SFT and 5e-6 for GRPO on real models)")
    p.add_argument("--grpo-lr", type=float)
    p.add_argument("--num-generations", type=int, default=4, help="GRPO completions per prompt")
    p.add_argument("--max-tokens", type=int, default=32, help="new tokens per completion (eval and GRPO)")
    p.add_argument("--max-length", type=int, default=256, help="SFT max tokens per example")
    p.add_argument("--method", default="grpo", choices=["grpo", "gspo", "dr_grpo"], help="the RL method")
    p.add_argument("--backend", default="transformers", choices=["transformers", "vllm"],
                   help="generation for evaluation and traces (vllm: GPU; training is TRL either way)")
    p.add_argument("--traces", action="store_true", help="also run seed 004's experiment 2 (SFT on GRPO traces)")
    p.add_argument("--run-id", default=time.strftime("%Y%m%d_%H%M%S", time.gmtime()))
    args = p.parse_args()

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if args.model:
        model = str(Path(args.model).resolve())
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from tiny_model import build_tiny_model

        model = str(build_tiny_model(out / "tiny-model"))
        print(f"built the tiny CPU model in {model}")
    train_rows = read_jsonl(Path(args.train_data)) if args.train_data else arithmetic(args.train_samples, 0)
    test_rows = read_jsonl(Path(args.test_data)) if args.test_data else arithmetic(args.eval_samples, 1)
    train = write_jsonl(data / "train.jsonl", train_rows[: args.train_samples])
    test = write_jsonl(data / "test.jsonl", test_rows[: args.eval_samples])
    sft = write_jsonl(data / "sft.jsonl", seed004_sft_rows(train_rows[: args.train_samples]))

    commands: list[str] = []
    run_id = args.run_id
    common_eval = ["--task", "gsm8k", "--system-prompt", SYSTEM_PROMPT]
    gen = ["--eval-max-tokens", str(args.max_tokens), "--eval-limit", str(args.eval_samples),
           "--eval-backend", args.backend]
    lora = ["--lora", "--batch-size", str(args.batch_size), "--seed", "0"]

    # 1. base model (seed 004 step 1)
    gradeset("eval", str(test), "--backend", args.backend, "--model", model, "-n", "1",
             "--max-tokens", str(args.max_tokens), "--limit", str(args.eval_samples), "--out-dir", str(out / "base"),
             "--stage", "base", "--run-id", run_id, "--quiet", *common_eval, log=commands)
    # 2. SFT with LoRA, evaluated at the end (seed 004 step 2/3)
    gradeset("train", "sft", "--data", str(sft), "--model", model, "--out", str(out / "sft"), *lora,
             "--max-steps", str(args.sft_steps), "--lr", str(args.lr), "--max-length", str(args.max_length),
             "--eval-data", str(test), "--run-id", run_id, *common_eval, *gen, log=commands)
    # 3. GRPO (or GSPO / Dr. GRPO) from the SFT run, rewards = correctness + format (seed 004 step 4)
    gradeset("train", args.method, "--data", str(train), "--model", str(out / "sft"), "--out", str(out / args.method),
             *lora, "--max-steps", str(args.grpo_steps), "--lr", str(args.grpo_lr or args.lr),
             "--num-generations", str(args.num_generations), "--max-completion-length", str(args.max_tokens),
             "--reward", "correctness=1.0,format=0.2", "--conversational",
             "--eval-data", str(test), "--run-id", run_id, *common_eval, *gen, log=commands)
    stages = {"base": out / "base", "sft": out / "sft", args.method: out / args.method}
    # 4. experiment 2: traces from the GRPO model, then SFT on them
    if args.traces:
        traces = out / "traces" / "grpo_traces_train.jsonl"
        gradeset("traces", str(train), "--out", str(traces), "--backend", args.backend,
                 "--model", str(out / args.method / "model"), "--max-attempts", "5", "--temperature", "0.8",
                 "--max-tokens", str(args.max_tokens), "--task", "gsm8k", "--system-prompt", SYSTEM_PROMPT,
                 "--quiet", log=commands)
        gradeset("train", "sft", "--data", str(traces), "--model", model, "--out", str(out / "sft_from_traces"),
                 *lora, "--max-steps", str(args.sft_steps), "--lr", str(args.lr), "--max-length", str(args.max_length),
                 "--conversational", "--eval-data", str(test), "--run-id", run_id, *common_eval, *gen,
                 "--stage", "sft_traces", log=commands)
        stages["sft_traces"] = out / "sft_from_traces"

    sys.path.insert(0, str(REPO))
    from gradeset.evaluate import table

    rows = {}
    for name, folder in stages.items():
        found = sorted((folder / "debug").glob(f"*_{run_id}_metrics.json"))
        rows[name] = json.loads(found[-1].read_text()) if found else {}
    keys = ["accuracy", "pass@1", "thinking_proportion", "answer_proportion", "n_groups"]
    print("\n" + table(rows, keys))
    summary = {"run_id": run_id, "model": model, "stages": {k: {m: v.get(m) for m in keys} for k, v in rows.items()},
               "commands": commands}
    (out / f"comparison_{run_id}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nmetrics table saved to {out / f'comparison_{run_id}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
