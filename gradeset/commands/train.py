"""``gradeset train {sft,dpo,grpo,gspo,dr_grpo,kto}``: hand gradeset data to a TRL trainer.

gradeset builds the TRL config (with GSPO's and Dr. GRPO's published settings), turns
verifiers into GRPO reward functions, saves ``OUT/model`` and ``OUT/debug`` as seed 004
does and, with ``--eval-data``, evaluates the trained model into the same ``debug/``.
"""

from __future__ import annotations

import argparse
import sys

from gradeset.commands._common import Job

METHOD_NAMES = ("sft", "dpo", "grpo", "gspo", "dr_grpo", "kto")

# command-line flag -> TRL config field
FLAG_FIELDS = {
    "max_steps": "max_steps", "epochs": "num_train_epochs", "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size", "grad_accum": "gradient_accumulation_steps",
    "num_generations": "num_generations", "max_length": "max_length",
    "max_completion_length": "max_completion_length", "seed": "seed", "logging_steps": "logging_steps",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train with TRL: sft, dpo, grpo, gspo, dr_grpo, kto (writes OUT/model and OUT/debug)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=METHOD_NAMES,
                   help="gspo = GRPO with sequence-level importance ratios; dr_grpo = GRPO done right")
    p.add_argument("--data", required=True, help="training data: a TRL layout, or gradeset groups (shaped first)")
    p.add_argument("--model", "--base-model", dest="model", required=True,
                   help="model folder, hub id, an earlier run's OUT folder, or a LoRA adapter folder")
    p.add_argument("--out", "-o", required=True, help="run folder: OUT/model and OUT/debug")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (peft) instead of all weights")
    p.add_argument("--config", help="YAML of TRL config fields (and a lora: section); unknown keys are an error")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one TRL field (or lora.FIELD); repeatable; values parsed as YAML")
    p.add_argument("--task", help="verifier for the correctness reward and the evaluation (default: task column)")
    p.add_argument("--reward", help="weighted rewards for grpo/gspo/dr_grpo, e.g. correctness=1.0,format=0.2")
    p.add_argument("--format-style", choices=["working_out", "think"],
                   help="structure the format reward checks: seed 004's working_out/SOLUTION tags (default) "
                        "or <think>/<answer>")
    p.add_argument("--reward-workers", type=int, default=1, help="verifier processes for rewards (0: in-process)")
    p.add_argument("--reward-timeout", type=float, default=5.0, help="seconds per reward verification")
    p.add_argument("--system-prompt", help="system prompt added when shaping groups and for evaluation")
    p.add_argument("--conversational", action="store_true", help="shape groups into chat messages")
    p.add_argument("--limit", type=int, help="train on the first N rows only (seed 004's TRAIN_SAMPLES)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, else fp32), float32, bfloat16, float16")
    p.add_argument("--stage", help="stage name for debug files (default: the method)")
    p.add_argument("--run-id", help="run id for debug files (default: UTC time)")
    t = p.add_argument_group("common TRL fields (shortcuts for --set)")
    t.add_argument("--max-steps", type=int)
    t.add_argument("--epochs", type=float)
    t.add_argument("--lr", type=float, help="learning_rate")
    t.add_argument("--batch-size", type=int, help="per_device_train_batch_size")
    t.add_argument("--grad-accum", type=int, help="gradient_accumulation_steps")
    t.add_argument("--num-generations", type=int, help="GRPO family: completions per prompt")
    t.add_argument("--max-length", type=int, help="sft/dpo/kto: max tokens per example")
    t.add_argument("--max-completion-length", type=int, help="GRPO family: max new tokens per completion")
    t.add_argument("--seed", type=int)
    t.add_argument("--logging-steps", type=int)
    e = p.add_argument_group("evaluation after training (seed 004)")
    e.add_argument("--eval-data", help="prompts (with answers) to evaluate the trained model on")
    e.add_argument("--eval-k", default="1", help="k for pass@k / maj@k")
    e.add_argument("--eval-n", type=int, help="samples per prompt (default: the largest k)")
    e.add_argument("--eval-temperature", type=float, help="default: 0 for n=1, else 1.0")
    e.add_argument("--eval-max-tokens", type=int, default=256)
    e.add_argument("--eval-limit", type=int, help="evaluate the first N prompts (seed 004's EVAL_SAMPLES)")
    e.add_argument("--eval-backend", default="transformers", choices=["transformers", "vllm"],
                   help="local backend that generates the evaluation answers (vllm needs a GPU)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.set_defaults(func=run)


def run(args) -> int:
    from gradeset.train.launch import train

    flags = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items()}
    eval_opts = None
    if args.eval_data:
        eval_opts = {"ks": args.eval_k, "n": args.eval_n, "temperature": args.eval_temperature,
                     "max_tokens": args.eval_max_tokens, "limit": args.eval_limit, "backend": args.eval_backend}
    with Job(args.out, strict=args.strict, name=f"train {args.method}") as job:
        summary = train(
            args.method, args.data, args.model, args.out, lora=args.lora, config_file=args.config, flags=flags,
            sets=args.set, task=args.task, rewards=args.reward, reward_workers=args.reward_workers,
            reward_timeout=args.reward_timeout, system_prompt=args.system_prompt,
            reward_opts={"format": {"style": args.format_style}} if args.format_style else None,
            conversational=args.conversational, limit=args.limit, dtype=args.dtype, stage=args.stage,
            run_id=args.run_id, eval_data=args.eval_data, eval_opts=eval_opts,
            on_reject=job.rejects.add, log=lambda m: print(m, file=sys.stderr),
        )
        job.read = summary["data_rows"] + job.rejected
        job.written = summary["data_rows"]
        job.note(f"model saved to {summary['files']['model']} ({summary['saved']}); "
                 f"{summary['global_step']} steps in {summary['train_runtime_s']:.1f}s, "
                 f"{summary['trainable_tensors_changed']}/{summary['trainable_tensors']} trainable tensors changed")
    if summary.get("eval"):
        m = summary["eval"]["metrics"]
        shown = {k: v for k, v in m.items() if k in ("accuracy", "thinking_proportion", "answer_proportion")
                 or k.startswith(("pass@", "maj@"))}
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    if summary["trainable_tensors_changed"] == 0:
        print("gradeset: warning: training changed no weights (every reward equal in every group? learning "
              f"rate 0?); see {summary['files']['log']}", file=sys.stderr)
    return 0
