"""``gradeset balance IN... --out OUT``: seed 003's merge + rebalance of graded groups.

Several inputs are merged (a group without a ``task`` takes its file's name as task
when there is more than one input). The bucket table (task x all-correct / all-wrong /
mixed: groups and rows, before and after) is printed on stderr and saved as
``OUT.stats.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradeset.commands._common import add_output, add_quiet, progress, write_rows


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("balance", help="merge graded files and rebalance correctness buckets (all-correct / mixed / all-wrong)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IN", help="graded group files or shard folders to merge")
    p.add_argument("--layout", help="input layout (detected when omitted)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line (exit 2)")
    add_output(p)
    p.add_argument("--bucket-caps", help="groups per bucket within each task, e.g. mixed=5000,all-correct=1000 "
                   "(* = every other bucket)")
    p.add_argument("--bucket-ratios", help="target mix of buckets within each task, e.g. "
                   "mixed=2,all-correct=1,all-wrong=1 (the largest mix the data allows; holds the input)")
    p.add_argument("--task-caps", help="groups per task, e.g. math=8000,trivia=4000")
    p.add_argument("--task-row-caps", help="rows (completions) per task, e.g. math=20000,*=10000")
    p.add_argument("--drop-buckets", help="buckets to leave out entirely, e.g. all-wrong,ungraded")
    p.add_argument("--per-prompt", type=int, help="down-sample each prompt to at most K responses "
                   "(keeping the correct share)")
    p.add_argument("--upsample", action="store_true", help="also repeat responses of prompts with fewer than K")
    p.add_argument("--keep", choices=["all", "correct", "incorrect"], default="all",
                   help="which responses to keep before sampling (correct: SFT on right answers only)")
    p.add_argument("--correct-threshold", type=float, default=1.0,
                   help="score at which a response without a 'correct' flag counts as correct")
    p.add_argument("--seed", type=int, default=0, help="seed of the (order-independent) choice under caps")
    p.add_argument("--to", dest="to_layout", default="group",
                   help="output layout: group (default), seed003 (one row per completion), trl-sft, ...")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    import orjson

    from gradeset.commands.build import BuildJob
    from gradeset.io.atomic import write_bytes_atomic
    from gradeset.shape.balance import BalanceConfig, Balancer, format_table, iter_balance
    from gradeset.shape.rows import export

    cfg = BalanceConfig(bucket_caps=args.bucket_caps, bucket_ratios=args.bucket_ratios, task_caps=args.task_caps, task_row_caps=args.task_row_caps,
                        drop_buckets=args.drop_buckets or (), per_prompt=args.per_prompt, upsample=args.upsample,
                        keep=args.keep, seed=args.seed, correct_threshold=args.correct_threshold)
    bal = Balancer(cfg)
    with BuildJob(args.out, strict=args.strict, name="balance") as job:
        job.kind = "balance"

        def merged():
            for path in args.inputs:
                task = Path(path).name.split(".")[0] if len(args.inputs) > 1 else None
                for g in job.groups(path, args.layout):
                    if task and not g.get("task"):
                        g["task"] = task
                    yield g

        groups = progress(merged(), desc="balance", unit="group", disable=args.quiet)
        rows = export(iter_balance(groups, bal), args.to_layout)
        write_rows(job, args.out, rows, fmt=args.out_format)
        st = bal.stats
        job.used = st.get("groups_out", 0)
        for reason in ("dropped_bucket", "dropped_bucket_cap", "dropped_bucket_ratio", "dropped_task_cap",
                       "dropped_row_cap",
                       "dropped_no_kept_responses"):
            if st.get(reason):
                job.skip(reason.removeprefix("dropped_").replace("_", " "), st[reason])
        table = format_table(bal.before, bal.after)
        print(table, file=sys.stderr)
        side = {"stats": st, "table": [
            {"task": t, "bucket": b, "groups_before": bal.before.get((t, b), [0, 0])[0],
             "rows_before": bal.before.get((t, b), [0, 0])[1], "groups_after": bal.after.get((t, b), [0, 0])[0],
             "rows_after": bal.after.get((t, b), [0, 0])[1]}
            for t, b in sorted(set(bal.before) | set(bal.after))]}
        side_path = Path(str(args.out).rstrip("/") + ".stats.json")
        write_bytes_atomic(side_path, orjson.dumps(side, option=orjson.OPT_INDENT_2))
    return 0
