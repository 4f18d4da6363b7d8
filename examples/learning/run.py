#!/usr/bin/env python
"""One command that shows gradeset's data making a model better, on a laptop CPU.

    python examples/learning/run.py --out DIR [--seed S]

Starting from the embedded model ``gradeset:arith-tiny`` (a ~1M-parameter arithmetic
model that answers 44.5% of its held-out questions greedily), every stage is a plain
``gradeset`` command, printed before it runs:

- **base**: ``gradeset eval`` on the held-out questions packaged with the model.
- **grpo**: ``gradeset train grpo``, the reward being gradeset's ``math`` verifier (online
  RL: the model samples 8 answers per prompt, right ones pushed up), on prompts gradeset
  curated the way a user would for a real model: ``gradeset generate`` 8 samples per
  synthetic prompt, ``gradeset verify``, ``gradeset build grpo --mixed-only`` keeps the
  prompts whose samples are neither all right nor all wrong (a zero-variance group gives
  GRPO no gradient, so a step spent on it is wasted). ``--grpo-prompts all`` trains on every
  synthetic prompt instead.
  ``--grpo-rounds R`` repeats curate-then-train R times, each round curating its own slice of
  the prompts with the model the previous round trained (measured: no better on average here).
- **dpo**: on-policy pairs: ``gradeset generate`` 8 samples per prompt from the model,
  ``gradeset verify``, ``gradeset build dpo`` (a right answer vs a wrong one of the same
  prompt), ``gradeset train dpo`` with an SFT term on the chosen answer
  (TRL ``loss_type=[sigmoid, sft]``; plain DPO on these pairs unlearns the format).
- **traces_sft**: seed 004's experiment 2 as rejection sampling: ``gradeset traces`` keeps
  the first correct of up to 5 samples per prompt, ``gradeset train sft`` on those.

Each trained model is evaluated greedily on the same held-out file; the script prints
seed 004's metrics table with the change in points and writes ``DIR/results.json``:
``{"stages": {"base": {"accuracy", "seconds"}, "grpo": {...}, "dpo": {...}, "traces_sft": {...}}}``
(accuracy as a fraction; seconds of that stage's training, CPU seconds beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from gradeset.models import embedded_path  # noqa: E402
from gradeset.models.arith import MAX_ANSWER_TOKENS  # noqa: E402

MODEL = "gradeset:arith-tiny"
STAGES = ("base", "grpo", "dpo", "traces_sft")


def gradeset(*args: str, log: list[dict]) -> dict:
    """Run one gradeset command; record its wall and CPU seconds (children's user+sys)."""
    shown = "gradeset " + " ".join(shlex.quote(a) for a in args)
    print(f"\n$ {shown}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    # torch's own thread count (one per core) unless OMP_NUM_THREADS says otherwise: with gradient
    # checkpointing off, a GRPO step of 128 completions is compute-bound (0.21 s on 2 threads, 0.33 s
    # on one)
    env = {**os.environ, "GRADESET_NO_PROGRESS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "gradeset", *args], check=True, cwd=REPO, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    entry = {"command": shown, "wall_s": round(time.time() - started, 1),
             "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1)}
    print(f"  ({entry['wall_s']}s wall, {entry['cpu_s']}s CPU)", flush=True)
    log.append(entry)
    return entry


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_summary(run: Path) -> dict:
    found = sorted((run / "debug").glob("*_train.json"))
    if not found:
        raise SystemExit(f"{run}: no training summary in debug/")
    return json.loads(found[-1].read_text())


def stage_result(summary: dict, cpu_s: float) -> dict:
    m = summary["eval"]["metrics"]
    return {"accuracy": m["accuracy"], "seconds": summary["train_runtime_s"], "cpu_seconds": cpu_s,
            "steps": summary["global_step"], "answer_proportion": m.get("answer_proportion")}


def sample_and_grade(prompts: Path, samples: Path, graded: Path, model: str, seed: str, log: list[dict]) -> float:
    """8 samples per prompt from ``model`` at temperature 1, graded by the ``math`` verifier: the
    on-policy data both GRPO's curation and the DPO pairs are built from. Returns CPU seconds."""
    cpu = gradeset("generate", str(prompts), "--out", str(samples), "--backend", "transformers", "--model", model,
                   "-n", "8", "--temperature", "1.0", "--max-tokens", str(MAX_ANSWER_TOKENS), "--seed", seed,
                   "--quiet", log=log)["cpu_s"]
    return cpu + gradeset("verify", str(samples), "--out", str(graded), "--task", "math", "--quiet", log=log)["cpu_s"]


def grpo_stage(args: argparse.Namespace, rows: list[dict], prompts: Path, data: Path, out: Path,
               evals: list[str], log: list[dict]) -> dict:
    """GRPO in ``--grpo-rounds`` rounds, each curating fresh prompts with the model it starts from.

    A prompt's mix of right and wrong samples is a property of the model: as GRPO learns, groups
    that were mixed become all right (the zero-variance share of a batch climbs from ~0.3 to
    ~0.5 in one round), so each round re-runs gradeset's loop (generate -> verify -> build grpo
    --mixed-only) with the current model on its own slice of the synthetic prompts."""
    seed, tokens = str(args.seed), str(MAX_ANSWER_TOKENS)
    rounds = args.grpo_rounds
    model, seconds, cpu_train, steps, last = args.model, 0.0, 0.0, 0, {}
    curations: list[dict] = []
    per_round = max(1, len(rows) // rounds)
    for r in range(rounds):
        tag = "" if rounds == 1 else f"_r{r + 1}"
        run = out / "grpo" if r == rounds - 1 else out / f"grpo{tag}"
        grpo_data = prompts
        curation = {"prompts": len(rows), "of": len(rows), "cpu_seconds": 0.0}
        if args.grpo_prompts == "curated":
            part, part_rows = prompts, rows
            if rounds > 1:
                part = data / f"prompts{tag}.jsonl"
                part_rows = rows[r * per_round:] if r == rounds - 1 else rows[r * per_round:(r + 1) * per_round]
                part.write_text("".join(json.dumps(x) + "\n" for x in part_rows), encoding="utf-8")
            graded, grpo_data = data / f"grpo_graded{tag}.jsonl", data / f"grpo_prompts{tag}.jsonl"
            cpu = sample_and_grade(part, data / f"grpo_samples{tag}.jsonl", graded, model, seed, log)
            cpu += gradeset("build", "grpo", str(graded), "--out", str(grpo_data), "--mixed-only", "--quiet",
                            log=log)["cpu_s"]
            curation = {"prompts": len(read_jsonl(grpo_data)), "of": len(part_rows), "cpu_seconds": round(cpu, 1)}
            if not curation["prompts"]:
                raise SystemExit("no prompt had mixed right/wrong samples; use --grpo-prompts all")
        curations.append(curation)
        round_steps = args.grpo_steps // rounds + (1 if r < args.grpo_steps % rounds else 0)
        # only the last round is evaluated on the held-out questions (they stay unseen until then)
        e = gradeset("train", "grpo", "--data", str(grpo_data), "--model", model, "--out", str(run),
                     "--reward", "correctness", "--num-generations", "8", "--max-completion-length", tokens,
                     "--batch-size", str(args.grpo_batch), "--max-steps", str(round_steps),
                     "--lr", str(args.grpo_lr), "--seed", seed, "--logging-steps", "20",
                     "--set", "temperature=1.0", "--set", "dataloader_num_workers=0",
                     "--set", "lr_scheduler_type=linear", "--set", "gradient_checkpointing=false",
                     *(evals if r == rounds - 1 else ["--task", "math", "--run-id", f"seed{args.seed}{tag}"]), log=log)
        summary = train_summary(run)
        seconds += summary["train_runtime_s"]
        cpu_train += e["cpu_s"]
        steps += summary["global_step"]
        model = str(run / "model")
        if r == rounds - 1:
            last = stage_result(summary, e["cpu_s"])
    result = {**last, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_train, 1), "steps": steps}
    if rounds == 1:
        result["curation"] = curations[0]
    else:
        result["curation"] = {"prompts": sum(c["prompts"] for c in curations), "of": len(rows),
                              "cpu_seconds": round(sum(c["cpu_seconds"] for c in curations), 1),
                              "rounds": curations}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder (results.json lands here)")
    p.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    p.add_argument("--model", default=MODEL, help="starting model (default: the embedded gradeset:arith-tiny)")
    p.add_argument("--heldout", help="held-out question/answer file (default: the one packaged with the model)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ", ".join(STAGES))
    p.add_argument("--prompts", type=int, default=6000, help="synthetic training prompts")
    p.add_argument("--grpo-prompts", choices=("curated", "all"), default="curated",
                   help="curated: only prompts with mixed right/wrong samples (gradeset build grpo "
                        "--mixed-only); all: every synthetic prompt")
    p.add_argument("--grpo-steps", type=int, default=750, help="GRPO steps in all (split evenly over the rounds)")
    p.add_argument("--grpo-rounds", type=int, default=1,
                   help="curate-then-train rounds; each curates its own slice of the prompts with the model "
                        "the previous round trained")
    p.add_argument("--grpo-lr", type=float, default=6e-4, help="peak learning rate (linear decay to 0)")
    p.add_argument("--grpo-batch", type=int, default=128, help="completions per GRPO step (8 per prompt)")
    p.add_argument("--offline-prompts", type=int, default=1000, help="prompts sampled for DPO pairs and traces")
    p.add_argument("--offline-steps", type=int, default=150)
    p.add_argument("--offline-lr", type=float, default=1e-4)
    args = p.parse_args(argv)

    if args.grpo_rounds < 1 or args.grpo_steps < args.grpo_rounds:
        p.error("--grpo-rounds must be at least 1 and at most --grpo-steps")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        p.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    out = Path(args.out).resolve()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    seed = str(args.seed)
    heldout = Path(args.heldout).resolve() if args.heldout else embedded_path(MODEL) / "heldout.jsonl"
    build = json.loads((embedded_path(MODEL) / "build_info.json").read_text())
    build_seed, operators = build["seed"], build.get("operators", "+-*/")
    log: list[dict] = []
    tokens = str(MAX_ANSWER_TOKENS)
    run_id = f"seed{args.seed}"

    # Synthetic prompts, drawn with the model's build seed and operators so the held-out questions
    # stay out of them (synth draws its test questions first and never trains on them); checked below too.
    prompts = data / "prompts.jsonl"
    gradeset("synth", "arithmetic", "--out", str(prompts), "--layout", "group", "--negatives", "wrong-answer",
             "--n", str(args.prompts), "--seed", str(build_seed), "--operators", operators,
             "--test-out", str(data / "synth_test.jsonl"),
             log=log)
    rows = read_jsonl(prompts)
    held = {r["question"] for r in read_jsonl(heldout)}
    leaked = [r["prompt"] for r in rows if r["prompt"] in held]
    if leaked:
        raise SystemExit(f"{len(leaked)} held-out questions are among the training prompts, e.g. {leaked[0]!r}")
    rows = [{k: v for k, v in r.items() if k != "responses"} for r in rows]  # prompt + answer only
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    offline = data / "offline_prompts.jsonl"
    offline.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.offline_prompts]), encoding="utf-8")

    evals = ["--eval-data", str(heldout), "--eval-max-tokens", tokens, "--task", "math", "--run-id", run_id]
    results: dict[str, dict] = {}

    if "base" in stages:
        t = time.time()
        e = gradeset("eval", str(heldout), "--backend", "transformers", "--model", args.model, "-n", "1",
                     "--temperature", "0", "--max-tokens", tokens, "--task", "math", "--out-dir", str(out / "base"),
                     "--stage", "base", "--run-id", run_id, "--quiet", log=log)
        m = json.loads((out / "base" / "debug" / f"base_{run_id}_metrics.json").read_text())
        results["base"] = {"accuracy": m["accuracy"], "seconds": 0.0, "cpu_seconds": 0.0,
                           "eval_seconds": round(time.time() - t, 1), "eval_cpu_seconds": e["cpu_s"],
                           "answer_proportion": m.get("answer_proportion")}

    if "grpo" in stages:
        results["grpo"] = grpo_stage(args, rows, prompts, data, out, evals, log)

    if "dpo" in stages:
        samples, graded, pairs = data / "samples.jsonl", data / "graded.jsonl", data / "dpo_pairs.jsonl"
        cpu = sample_and_grade(offline, samples, graded, args.model, seed, log)
        cpu += gradeset("build", "dpo", str(graded), "--out", str(pairs), "--quiet", log=log)["cpu_s"]
        e = gradeset("train", "dpo", "--data", str(pairs), "--model", args.model, "--out", str(out / "dpo"),
                     "--batch-size", "32", "--max-steps", str(args.offline_steps), "--lr", str(args.offline_lr),
                     "--seed", seed, "--logging-steps", "20", "--max-length", "32",
                     "--set", "loss_type=[sigmoid,sft]", "--set", "dataloader_num_workers=0", *evals, log=log)
        results["dpo"] = {**stage_result(train_summary(out / "dpo"), e["cpu_s"]),
                          "data_cpu_seconds": round(cpu, 1), "pairs": len(read_jsonl(pairs))}

    if "traces_sft" in stages:
        traces = data / "traces.jsonl"
        cpu = gradeset("traces", str(offline), "--out", str(traces), "--backend", "transformers",
                       "--model", args.model, "--max-attempts", "5", "--temperature", "1.0",
                       "--max-tokens", tokens, "--task", "math", "--fallback", "none", "--to", "trl-sft",
                       "--seed", seed, "--quiet", log=log)["cpu_s"]
        e = gradeset("train", "sft", "--data", str(traces), "--model", args.model, "--out", str(out / "traces_sft"),
                     "--batch-size", "32", "--max-steps", str(args.offline_steps), "--lr", str(args.offline_lr),
                     "--seed", seed, "--logging-steps", "20", "--max-length", "32",
                     "--set", "dataloader_num_workers=0", *evals, log=log)
        results["traces_sft"] = {**stage_result(train_summary(out / "traces_sft"), e["cpu_s"]),
                                 "data_cpu_seconds": round(cpu, 1), "examples": len(read_jsonl(traces))}

    from gradeset.evaluate import table

    base = results.get("base", {}).get("accuracy")
    shown = {}
    for name, r in results.items():
        delta = None if base is None else round(100 * (r["accuracy"] - base), 2)  # one question = 0.25
        shown[name] = {"accuracy": r["accuracy"], "answer_proportion": r.get("answer_proportion"),
                       "change_points": delta, "train_s": r["seconds"], "command_cpu_s": r["cpu_seconds"]}
    print("\n" + table(shown, ["accuracy", "answer_proportion", "change_points", "train_s", "command_cpu_s"]))
    print("train_s: wall seconds of training; command_cpu_s: CPU seconds of the whole training command "
          "(loading, training, evaluating)")
    payload = {"model": args.model, "seed": args.seed, "heldout": str(heldout), "stages": results,
               "commands": log}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
