"""``gradeset load SRC --out OUT``: a table or Hugging Face dataset as prompt groups.

SRC is a local CSV / Parquet / JSONL / Arrow file, a ``save_to_disk`` folder, a shard
folder, or a hub id (``openai/gsm8k``; needs the network). Prompt, answer, solution and
source columns are detected from their names (seed 003's candidates) unless given with
the ``--*-col`` flags; the choice is printed. ``--sample N --seed S`` draws a seeded
uniform sample while streaming (reservoir sampling), after ``--max-rows`` caps the read.
"""

from __future__ import annotations

import argparse
import sys

from gradeset.commands._common import Job, add_quiet, progress, write_rows
from gradeset.errors import GradesetError


def register(sub) -> None:
    p = sub.add_parser("load", help="load a table / HF dataset as prompt groups (column detection)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="CSV, Parquet, JSONL, save_to_disk folder, or a Hugging Face hub id")
    p.add_argument("--out", "-o", required=True, help="output file (groups; JSONL, Parquet, ...)")
    p.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    p.add_argument("--split", help="split (hub datasets, DatasetDict folders); hub default: train")
    p.add_argument("--config", help="dataset configuration (hub datasets), e.g. 'main' for gsm8k")
    p.add_argument("--max-rows", type=int, help="read at most this many rows")
    p.add_argument("--sample", type=int, help="keep a uniform random sample of N rows (streamed)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--prompt-col", help="column holding the prompt (default: detected)")
    p.add_argument("--answer-col", help="column holding the gold answer (default: detected)")
    p.add_argument("--solution-col", help="column holding a worked solution (default: detected)")
    p.add_argument("--source-col", help="column naming each row's source (default: detected)")
    p.add_argument("--source-name", help="source to record when there is no source column "
                                         "(default: the file stem or hub id)")
    p.add_argument("--task", help="task recorded on every group (math, gsm8k, mcq, trivia, ...)")
    p.add_argument("--keep-cols", default="all",
                   help="other columns kept on each group: all (default), none, or a comma-separated list "
                        "(TriviaQA's rc config carries whole web pages: use none)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row (exit 2)")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from gradeset.sources.tables import (
        arrow_batches,
        detect_columns,
        iter_source,
        reservoir_sample,
        row_to_group,
        sample_arrow_batches,
        take,
    )

    if args.sample is not None and args.sample <= 0:
        raise GradesetError("--sample must be positive")
    if args.max_rows is not None and args.max_rows <= 0:
        raise GradesetError("--max-rows must be positive")
    keep = None if args.keep_cols == "all" else (set() if args.keep_cols == "none" else
                                                 {c.strip() for c in args.keep_cols.split(",") if c.strip()})
    if args.config and Path(args.src).exists():
        print("note: --config applies to hub datasets only; ignored for a local path", file=sys.stderr)
    source_name = args.source_name or (Path(args.src).stem if Path(args.src).exists() else args.src)
    with Job(args.out, strict=args.strict, name="load") as job:
        def on_reject(rej) -> None:
            job.read += 1
            job.rejects.add(rej)

        def counted(items):
            for item in items:
                job.read += 1
                yield item

        batches = arrow_batches(args.src) if args.sample is not None else None
        if batches is not None:  # Parquet: only the sampled rows are ever converted to Python
            def seen(n: int) -> None:
                job.read += n

            sample = sample_arrow_batches(batches, args.sample, args.seed, args.max_rows, on_row=seen)
            if job.read > len(sample):
                job.skip("not sampled", job.read - len(sample))
            rows = iter(sample)
        else:
            rows = counted(take(iter_source(args.src, split=args.split, config=args.config, on_reject=on_reject),
                                args.max_rows))
            if args.sample is not None:
                before = job.read
                sample = reservoir_sample(rows, args.sample, args.seed)
                n_read = job.read - before
                if n_read > len(sample):
                    job.skip("not sampled", n_read - len(sample))
                rows = iter(sample)
        first = next(rows, None)
        if first is None:
            raise GradesetError(f"{args.src}: no rows")
        cols = detect_columns(first[1].keys(), prompt=args.prompt_col, answer=args.answer_col,
                              solution=args.solution_col, source=args.source_col, sample=first[1])
        print(cols.describe(), file=sys.stderr)
        if cols.prompt is None:
            raise GradesetError(f"{args.src}: no prompt column found among {', '.join(first[1].keys())}; "
                                "name it with --prompt-col")
        if cols.answer is None and cols.solution is None:
            job.note("no answer or solution column: groups have no gold answer (fine for SFT/judging, "
                     "not for verifiers)")

        def groups():
            from itertools import chain

            from gradeset.io import Reject
            from gradeset.io.writers import dumps

            for loc, row in progress(chain([first], rows), desc="load", unit="row", disable=args.quiet):
                group, reason = row_to_group(row, cols, task=args.task, source_name=source_name, keep=keep)
                if group is None:
                    try:
                        raw = dumps(row)
                    except TypeError:
                        raw = repr(row)[:2000]
                    job.rejects.add(Reject(args.src, loc, reason or "unusable row", raw))
                    continue
                yield group

        write_rows(job, args.out, groups(), fmt=args.out_format)
    return 0
