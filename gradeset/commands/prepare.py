"""``gradeset prepare``: seed 003's benchmark preparation.

  gradeset prepare math-merge FILES... --out merged_math.csv
      several math benchmarks -> one ``question, solution, original_source`` table
      (solution = the gold final answer; GSM8K ``####`` and ``\\boxed{}`` unwrapped;
      columns detected per file; exact duplicate questions kept once)
  gradeset prepare mmlu-pro IN --out mmlu_pro.csv
      MMLU-Pro rows (question, options, answer letter / answer_index) -> ``question,
      answer`` with the options appended to the question as ``A. ...`` lines

Inputs are files, folders or hub ids, as for ``gradeset load``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradeset.commands._common import Job, add_quiet, progress, write_rows
from gradeset.errors import GradesetError


def register(sub) -> None:
    p = sub.add_parser("prepare", help="benchmark preparation: math-merge, mmlu-pro",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="prepare_kind", metavar="KIND")

    m = sp.add_parser("math-merge", help="merge math benchmarks into question, solution, original_source")
    m.add_argument("inputs", nargs="+", help="benchmark files/folders/hub ids; NAME=PATH sets original_source")
    m.add_argument("--out", "-o", required=True, help="output table (CSV by default extension)")
    m.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    m.add_argument("--out-hf", help="also write the table as a Hugging Face save_to_disk folder (seed 003's "
                                    "--out_hf_dir)")
    m.add_argument("--split", help="split for hub ids / DatasetDict folders")
    m.add_argument("--config", help="configuration for hub ids")
    m.add_argument("--question-col", help="question column in every input (default: detected)")
    m.add_argument("--answer-col", help="answer column in every input (default: detected)")
    m.add_argument("--solution-col", help="worked-solution column (default: detected)")
    m.add_argument("--keep-duplicates", action="store_true", help="keep questions that repeat across inputs")
    m.add_argument("--keep-reference", action="store_true", help="add a reference column (worked solution)")
    m.add_argument("--strict", action="store_true", help="stop at the first bad row (exit 2)")
    add_quiet(m)
    m.set_defaults(func=run_math_merge)

    q = sp.add_parser("mmlu-pro", help="MMLU-Pro rows to question (options appended), answer letter")
    q.add_argument("input", help="MMLU-Pro file/folder or hub id (TIGER-Lab/MMLU-Pro)")
    q.add_argument("--out", "-o", required=True, help="output table")
    q.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    q.add_argument("--split", help="split (hub default: test)")
    q.add_argument("--config", help="configuration for hub ids")
    q.add_argument("--keep", default="", help="comma-separated extra columns to keep, e.g. category,src")
    q.add_argument("--strict", action="store_true", help="stop at the first bad row (exit 2)")
    add_quiet(q)
    q.set_defaults(func=run_mmlu_pro)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _split_named(item: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (NAME, PATH); a plain path is named by its stem (or the hub id)."""
    if "=" in item and not Path(item).exists():
        name, _, path = item.partition("=")
        if name and path:
            return name, path
    p = Path(item)
    return (p.stem if p.exists() else item), item


def run_math_merge(args) -> int:
    from gradeset.io import Reject
    from gradeset.io.writers import dumps
    from gradeset.sources.benchmarks import merge_math
    from gradeset.sources.tables import iter_source

    flags = {"prompt": args.question_col, "answer": args.answer_col, "solution": args.solution_col}
    with Job(args.out, strict=args.strict, name="prepare math-merge") as job:
        def on_reject_read(rej) -> None:
            job.read += 1
            job.rejects.add(rej)

        def counted(rows):
            for item in rows:
                job.read += 1
                yield item

        named = [_split_named(i) for i in args.inputs]
        sources = []
        for name, path in named:
            sources.append((name, counted(iter_source(path, split=args.split, config=args.config,
                                                      on_reject=on_reject_read))))
        paths = dict(named)

        def on_reject(name, loc, reason, row) -> None:
            job.rejects.add(Reject(paths[name], loc, reason, dumps(row)))

        import sys

        def on_columns(name, cols) -> None:
            print(f"{paths[name]}: question={cols.prompt or '-'}, answer={cols.answer or '-'}, "
                  f"solution={cols.solution or '-'}, source={cols.source or '-'}", file=sys.stderr)
            if cols.prompt is None:
                raise GradesetError(f"{paths[name]}: no question column; name it with --question-col")

        rows = merge_math(sources, flags, dedup=not args.keep_duplicates, keep_reference=args.keep_reference,
                          on_reject=on_reject, on_duplicate=lambda name, loc: job.skip("duplicate question"),
                          on_columns=on_columns)
        if args.out_hf:
            from gradeset.io import open_writer

            rows = list(progress(rows, desc="merge", unit="row", disable=args.quiet))
            with open_writer(args.out_hf, "hf") as w:
                w.write(rows)
            write_rows(job, args.out, rows, fmt=args.out_format)
        else:
            write_rows(job, args.out, progress(rows, desc="merge", unit="row", disable=args.quiet),
                       fmt=args.out_format)
    return 0


def run_mmlu_pro(args) -> int:
    from gradeset.io import Reject
    from gradeset.io.writers import dumps
    from gradeset.sources.benchmarks import mmlu_pro_row
    from gradeset.sources.tables import iter_source

    keep = [k.strip() for k in args.keep.split(",") if k.strip()]
    with Job(args.out, strict=args.strict, name="prepare mmlu-pro") as job:
        def on_reject_read(rej) -> None:
            job.read += 1
            job.rejects.add(rej)

        split = args.split
        if split is None and not Path(args.input).exists():
            split = "test"  # TIGER-Lab/MMLU-Pro has test and validation splits only
        rows = iter_source(args.input, split=split, config=args.config, on_reject=on_reject_read)

        def converted():
            for loc, row in progress(rows, desc="mmlu-pro", unit="row", disable=args.quiet):
                job.read += 1
                out, reason = mmlu_pro_row(row, keep)
                if out is None:
                    job.rejects.add(Reject(args.input, loc, reason or "unusable row", dumps(row)))
                    continue
                yield out

        write_rows(job, args.out, converted(), fmt=args.out_format)
    return 0
