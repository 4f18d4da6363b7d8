#!/usr/bin/env python
"""Build the embedded model ``gradeset:arith-tiny`` from scratch with gradeset's own commands.

    gradeset synth arithmetic  ->  prompt/completion rows  ->  gradeset train sft  ->  gradeset eval

A randomly initialised ~1M-parameter Qwen2 with a character-level tokenizer learns seed
002's arithmetic (``47-49=?``, ``50+x=77,x=?``) by supervised fine-tuning, stopped
mid-way on purpose so greedy accuracy on the held-out questions stays mid-range (40-60% is
the aim; the shipped build, 2,000 + 6,000 steps, reached 44.5%, see docs/train.md): groups
of sampled answers are then mixed, which is what GRPO and on-policy DPO learn from.
Deterministic given ``--seed`` (same data, same initial weights, same TRL seed).

    python scripts/build_embedded_model.py --work /tmp/arith-build [--install]

``--install`` copies the model (fp32 safetensors, tokenizer, config) and the held-out file
into gradeset/models/arith_tiny/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gradeset.models.arith import MAX_ANSWER_TOKENS, init_model, sft_rows  # noqa: E402

TARGET = REPO / "gradeset" / "models" / "arith_tiny"
KEEP = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json")


def gradeset(*args: str) -> None:
    print("$ gradeset " + " ".join(args), flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADESET_NO_PROGRESS": "1"}
    subprocess.run([sys.executable, "-m", "gradeset", *args], check=True, cwd=REPO, env=env)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="scratch folder for data and the training run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=50000, help="distinct training questions (capped by the operators' space)")
    p.add_argument("--operators", default="+-*/",
                   help="seed 002 operators the model learns (default all four, as the shipped model; '+-' keeps "
                        "47-49=?, 50+x=77,x=? and the other add/subtract forms); the held-out file comes from the "
                        "same operators")
    p.add_argument("--steps", type=int, default=2000, help="SFT steps (stopped mid-way on purpose)")
    p.add_argument("--phase2-steps", type=int, default=6000, help="SFT steps of a second phase (0: none)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra TRL setting for the SFT run (e.g. save_strategy=steps, save_steps=500 to keep "
                        "checkpoints and pick where to stop)")
    p.add_argument("--install", action="store_true", help="copy the result into --target")
    p.add_argument("--target", default=str(TARGET), help="where --install puts the model (default: the package's)")
    args = p.parse_args()

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    groups, heldout = work / "train_groups.jsonl", work / "heldout.jsonl"
    gradeset("synth", "arithmetic", "--out", str(groups), "--layout", "group", "--negatives", "wrong-answer",
             "--n", str(args.n), "--test-out", str(heldout), "--seed", str(args.seed), "--operators", args.operators)
    sft = work / "sft.jsonl"
    rows = list(sft_rows(read_jsonl(groups)))
    sft.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} prompt/completion rows -> {sft}")
    init = init_model(work / "init", seed=args.seed)
    run = work / "sft_run"
    gradeset("train", "sft", "--data", str(sft), "--model", str(init), "--out", str(run),
             "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             "--seed", str(args.seed), "--max-length", "32", "--logging-steps", "50",
             "--set", "lr_scheduler_type=constant_with_warmup", "--set", "warmup_steps=50",
             "--set", "dataloader_num_workers=0", *[a for kv in args.sets for a in ("--set", kv)], "--run-id", "build")
    if args.phase2_steps:
        # an optional second SFT phase from the first one's weights (fresh optimizer, constant lr,
        # next seed): the shipped model had 2,000 + 6,000 steps.
        run2 = work / "sft_run_phase2"
        gradeset("train", "sft", "--data", str(sft), "--model", str(run / "model"), "--out", str(run2),
                 "--max-steps", str(args.phase2_steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                 "--seed", str(args.seed + 1), "--max-length", "32", "--logging-steps", "100",
                 "--set", "lr_scheduler_type=constant", "--set", "dataloader_num_workers=0", "--run-id", "phase2")
        run = run2
    metrics = work / "heldout_metrics.json"
    gradeset("eval", str(heldout), "--backend", "transformers", "--model", str(run / "model"), "-n", "1",
             "--temperature", "0", "--max-tokens", str(MAX_ANSWER_TOKENS), "--task", "math",
             "--json", str(metrics), "--quiet")
    acc = json.loads(metrics.read_text())["accuracy"]
    print(f"held-out greedy accuracy {acc:.3f} after {args.steps} SFT steps; {time.time() - t0:.0f}s in all")
    if args.install:
        target = Path(args.target)
        target.mkdir(parents=True, exist_ok=True)
        for name in KEEP:
            if (run / "model" / name).exists():
                shutil.copy2(run / "model" / name, target / name)
        cfg = json.loads((target / "config.json").read_text())
        cfg["use_cache"] = True  # training switched the KV cache off; generation wants it
        (target / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        shutil.copy2(heldout, target / "heldout.jsonl")
        info = {"seed": args.seed, "operators": args.operators, "train_questions": len(rows), "sft_steps": args.steps,
                "phase2_steps": args.phase2_steps,
                "batch_size": args.batch_size, "lr": args.lr, "heldout_greedy_accuracy": acc,
                "built_with": "scripts/build_embedded_model.py"}
        (target / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
        size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
        print(f"installed into {target} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
