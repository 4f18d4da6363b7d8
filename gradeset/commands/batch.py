"""``gradeset batch IN --out OUT``: seed 001's static, dynamic (token budget) or stratified batches.

Each group gets ``batch`` (its batch number) and ``tokens`` (its token count). OUT is
one file, or a folder (no extension / trailing slash) with ``batch-00000.jsonl`` per
batch as seed 001 lays it out. ``OUT.batches.json`` summarises sizes and tokens.
"""

from __future__ import annotations

import argparse

from gradeset.commands._common import Job, add_input, add_quiet, progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="make training batches: static, dynamic by tokens, stratified",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input(p)
    p.add_argument("--out", "-o", required=True, help="output file, or folder for one file per batch")
    p.add_argument("--strategy", choices=["static", "dynamic", "stratified"], default="static")
    p.add_argument("--batch-size", type=int, default=32, help="static/stratified: groups per batch")
    p.add_argument("--batch-tokens", "--max-tokens", dest="max_tokens", type=int, default=8192,
                   help="dynamic: token budget per batch (default 8192; --max-tokens is the old name)")
    p.add_argument("--tokenizer", help="local tokenizer folder or tokenizer.json (default: words x 1.3)")
    p.add_argument("--count", choices=["prompt", "prompt+responses"], default="prompt",
                   help="what the token count covers")
    p.add_argument("--sort-window", type=int, default=0,
                   help="dynamic: sort by length within windows of N groups (less padding)")
    p.add_argument("--by", default="difficulty", help="stratified: field to balance (default difficulty)")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import orjson

    from gradeset.io import open_writer
    from gradeset.io.atomic import write_bytes_atomic
    from gradeset.io.writers import output_format
    from gradeset.shape.batch import (
        dynamic_batches,
        group_tokens,
        load_counter,
        static_batches,
        stratified_batches,
    )

    count = load_counter(args.tokenizer)
    folder = output_format(args.out) == "shards"
    sizes: list[int] = []
    tokens: list[int] = []
    stats: dict = {}
    with Job(args.out, strict=args.strict, name="batch") as job:
        groups = progress(job.groups(args.input, args.layout, args.split), desc="batch", unit="group",
                          disable=args.quiet)
        with_tokens = ((g, group_tokens(g, count, args.count)) for g in groups)
        if args.strategy == "dynamic":
            batches = dynamic_batches(with_tokens, args.max_tokens, args.sort_window, stats)
        elif args.strategy == "static":
            batches = static_batches(with_tokens, args.batch_size)
        else:
            items = [dict(g, tokens=n) for g, n in with_tokens]
            batches = ([(g, g.pop("tokens")) for g in b] for b in stratified_batches(items, args.batch_size, args.by))
        single = None if folder else open_writer(args.out)
        try:
            for i, batch in enumerate(batches):
                rows = [dict(g, batch=i, tokens=n) for g, n in batch]
                sizes.append(len(rows))
                tokens.append(sum(n for _, n in batch))
                if folder:
                    with open_writer(Path(args.out) / f"batch-{i:05d}.jsonl") as w:
                        w.write(rows)
                else:
                    single.write(rows)
                job.written += len(rows)
        except BaseException:
            if single is not None:
                single.abort()
            raise
        if single is not None:
            single.close()
        summary = {"strategy": args.strategy, "batches": len(sizes), "groups": sum(sizes),
                   "tokenizer": args.tokenizer or "estimate (words x 1.3)", "count": args.count,
                   "batch_size": {"min": min(sizes, default=0), "max": max(sizes, default=0),
                                  "mean": round(sum(sizes) / len(sizes), 3) if sizes else 0},
                   "batch_tokens": {"min": min(tokens, default=0), "max": max(tokens, default=0),
                                    "mean": round(sum(tokens) / len(tokens), 3) if tokens else 0},
                   "oversize": stats.get("oversize", 0)}
        if args.strategy == "dynamic":
            summary["max_tokens"] = args.max_tokens
        if stats.get("oversize"):
            job.note(f"{stats['oversize']} groups exceed --batch-tokens alone and got a batch of their own")
        side = Path(str(args.out).rstrip("/") + ".batches.json")
        write_bytes_atomic(side, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 0
