"""``gradeset split IN --out DIR``: train/valid/test by prompt, stratified, reproducible.

Writes ``DIR/train.jsonl``, ``DIR/valid.jsonl``, ``DIR/test.jsonl`` (``--ext`` for
Parquet) and ``DIR/split.json`` (shares, seed, counts per stratum). No prompt is in
two splits; the same seed gives the same split on every run and machine.
"""

from __future__ import annotations

import argparse

from gradeset.commands._common import Job, add_input, add_quiet, progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="split into train/valid/test by prompt (stratified, seeded)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input(p)
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--valid", type=float, help="valid share (default 0.05)")
    p.add_argument("--test", type=float, help="test share (default 0.05)")
    p.add_argument("--ratios", help="named shares instead, e.g. train=0.8,valid=0.1,test=0.1")
    p.add_argument("--stratify", choices=["task", "difficulty", "category", "source", "bucket"],
                   help="split each stratum in the same proportions")
    p.add_argument("--key", choices=["prompt", "prompt+answer", "id"], default="prompt",
                   help="what is kept together (default: the normalised prompt text)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--streaming", action="store_true",
                   help="one pass, hash only (shares exact in expectation; no memory)")
    p.add_argument("--ext", default="jsonl", help="file extension of the splits: jsonl, parquet, csv")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    from contextlib import ExitStack
    from pathlib import Path

    import orjson

    from gradeset.formats import read_groups
    from gradeset.io import open_writer
    from gradeset.io.atomic import write_bytes_atomic
    from gradeset.shape.split import (
        ExactPlan,
        parse_ratios,
        split_key,
        split_table,
        stratum_of,
        streaming_assign,
    )

    ratios = parse_ratios(args.ratios, args.valid, args.test)
    if args.stratify and args.streaming:
        sys.stderr.write("note: --streaming splits by hash alone; strata are proportional only in expectation\n")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        from gradeset.errors import GradesetError

        raise GradesetError(f"{out}: --out must be a folder")
    plan = None
    if not args.streaming:
        plan = ExactPlan(ratios, args.seed, args.stratify, args.key)
        for g in read_groups(args.input, layout=args.layout, split=args.split, on_reject=lambda r: None):
            plan.observe(g)
        plan.finish()
    counts: dict[tuple[str, str], int] = {}
    with Job(out / "split", strict=args.strict, name="split",
             rejects=out / "split.rejects.jsonl") as job, ExitStack() as stack:
        writers = {name: stack.enter_context(open_writer(out / f"{name}.{args.ext}")) for name in ratios}
        for g in progress(job.groups(args.input, args.layout, args.split), desc="split", unit="group",
                          disable=args.quiet):
            name = plan.assign(g) if plan else streaming_assign(split_key(g, args.key), ratios, args.seed)
            writers[name].write([g])
            job.written += 1
            s = stratum_of(g, args.stratify)
            counts[(s, name)] = counts.get((s, name), 0) + 1
        print(split_table(counts, list(ratios)), file=sys.stderr)
        summary = {"ratios": ratios, "seed": args.seed, "stratify": args.stratify, "key": args.key,
                   "mode": "streaming" if args.streaming else "exact",
                   "counts": {n: sum(v for (s, k), v in counts.items() if k == n) for n in ratios},
                   "strata": [{"stratum": s, "split": n, "groups": v} for (s, n), v in sorted(counts.items())]}
        write_bytes_atomic(out / "split.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    from gradeset.io.card import write_export_card

    write_export_card(out, args.input, layout="group", rows=job.written, read=job.read, rejected=job.rejected,
                      step="split", params={"ratios": ratios, "seed": args.seed, "stratify": args.stratify},
                      files=[{"path": f"{n}.{args.ext}", "layout": "group", "rows": summary["counts"][n]}
                             for n in ratios])
    return 0
