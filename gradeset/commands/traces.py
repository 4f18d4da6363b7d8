"""``gradeset traces``: seed 004's first-correct reasoning traces with a stats sidecar.

Samples up to ``--max-attempts`` per prompt at ``--temperature`` (one more attempt per
round for the prompts still unsolved), grades each attempt, keeps the first correct one
and falls back to the reference solution. Writes OUT, ``OUT.stats.json`` (seed 004's
keys) and, with ``--save-groups``, every graded attempt (for DPO/KTO later).
"""

from __future__ import annotations

import argparse
import json
import sys

from gradeset.commands._common import Job, add_input, add_quiet, write_rows
from gradeset.errors import GradesetError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "traces", help="rejection-sampled SFT data: the first correct of up to N attempts per prompt, else the reference",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input(p)
    p.add_argument("--out", "-o", required=True, help="trace file (JSONL, Parquet, ...)")
    p.add_argument("--backend", required=True, help="openai, anthropic, vllm, transformers")
    p.add_argument("--model", required=True, help="model name or local folder (e.g. a GRPO run's OUT/model)")
    p.add_argument("--base-url", help="OpenAI-compatible server URL")
    p.add_argument("--task", help="verifier (default: each group's task field)")
    p.add_argument("--max-attempts", type=int, default=5, help="attempts per prompt before the fallback")
    p.add_argument("--per-round", type=int, default=1,
                   help="attempts added per round for unsolved prompts (max-attempts: all at once)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--system-prompt")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--fallback", choices=["reference", "none"], default="reference",
                   help="what a prompt with no correct attempt gets")
    p.add_argument("--to", dest="layout_out",
                   help="output layout (default: gsm8k's question/answer for --task gsm8k, as seed 004 writes; "
                        "else trl-sft)")
    p.add_argument("--conversational", action="store_true", help="trl-sft: chat messages")
    p.add_argument("--save-groups", help="also write every graded attempt as groups")
    p.add_argument("--cache", help="request cache (default OUT.gencache.jsonl; a re-run resumes from it)")
    p.add_argument("--workers", type=int, default=1, help="grading worker processes")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per verification")
    p.add_argument("--limit", type=int, help="first N prompts only (seed 004's --num-samples)")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from gradeset.generate import GenerateConfig, default_cache_path
    from gradeset.io import atomic_open
    from gradeset.shape.rows import export
    from gradeset.train.traces import make_traces

    if args.max_attempts < 1:
        raise GradesetError("--max-attempts must be at least 1")
    opts = {"backend": args.backend, "model": args.model, "n": 1, "temperature": args.temperature,
            "max_tokens": args.max_tokens}
    for name in ("base_url", "top_p", "system_prompt", "concurrency", "seed"):
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    try:
        cfg = GenerateConfig(**opts)
    except Exception as exc:  # pydantic validation -> one line
        raise GradesetError(f"bad generation options: {exc}") from exc
    layout = args.layout_out or ("gsm8k" if args.task == "gsm8k" else "trl-sft")
    cache = args.cache or default_cache_path(args.out)
    with Job(args.out, strict=args.strict, name="traces") as job:
        groups = list(job.groups(args.input, args.layout, split=args.split, limit=args.limit))
        if not groups:
            raise GradesetError(f"{args.input}: no prompts")
        rows, stats, graded = make_traces(
            groups, cfg, task=args.task, max_attempts=args.max_attempts, per_round=args.per_round,
            fallback=None if args.fallback == "none" else "reference", cache_path=cache, workers=args.workers,
            timeout=args.timeout, log=None if args.quiet else (lambda m: print(m, file=sys.stderr)),
        )
        out_rows = export(rows, layout, conversational=args.conversational, system_prompt=args.system_prompt)
        write_rows(job, args.out, out_rows)
        for reason in ("dropped", "skipped_ungraded"):
            if stats.get(reason):
                job.skip(reason.replace("skipped_", ""), stats[reason])
        stats["layout"] = layout
        stats["output"] = str(args.out)
        with atomic_open(f"{args.out}.stats.json", "w") as fh:
            json.dump(stats, fh, indent=2)
            fh.write("\n")
        if args.save_groups:
            from gradeset.io import write_rows as write_plain

            write_plain(args.save_groups, graded)
            job.note(f"graded attempts written to {args.save_groups}")
        job.note(f"stats written to {args.out}.stats.json: success rate {stats.get('success_rate', 0):.3f}, "
                 f"fallbacks {stats.get('fallback_count', 0)}, {stats['generations']} generations "
                 f"in {stats['rounds']} rounds")
    return 0
