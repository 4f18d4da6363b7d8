"""``gradeset decontaminate IN --benchmark TEST... --out OUT``: keep benchmark questions out of training.

A prompt is removed when its word n-grams overlap a benchmark question enough (see
docs/shape.md). Removed groups go to ``OUT.contaminated.jsonl`` (or ``--removed``)
with ``contamination: {benchmark, line, text, overlap, benchmark_row}``. Benchmarks
are any readable file (JSONL, JSON, CSV, Parquet) with a question-like field, e.g.
seed 002's ``dpo_test_data.json`` (``question``/``answer``).
"""

from __future__ import annotations

import argparse

from gradeset.commands._common import Job, add_input, add_output, add_quiet, progress, write_rows
from gradeset.errors import GradesetError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decontaminate", help="remove prompts that overlap benchmark questions (n-grams)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input(p)
    add_output(p)
    p.add_argument("--benchmark", action="append", metavar="FILE",
                   help="benchmark file (required; repeat for several)")
    # -b was --benchmark here and --backend in generate: kept working, no longer advertised
    p.add_argument("-b", dest="benchmark", action="append", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--field", help="benchmark field with the question (default: prompt, question, problem, ...)")
    p.add_argument("--ngram", type=int, default=8, help="n-gram size in word/symbol tokens")
    p.add_argument("--min-overlap", type=float, default=0.5,
                   help="share of the shorter text's n-grams that must match (0 = any shared n-gram)")
    p.add_argument("--max-df", type=int, default=50,
                   help="ignore n-grams found in more benchmark rows than this (boilerplate)")
    p.add_argument("--removed", help="where removed groups go (default OUT.contaminated.jsonl)")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from gradeset.commands.dedup import AsideWriter
    from gradeset.shape.decontaminate import Decontaminator

    if not args.benchmark:
        raise GradesetError("--benchmark FILE is required (the held-out questions to keep out of training)")
    d = Decontaminator(args.benchmark, ngram=args.ngram, min_overlap=args.min_overlap, max_df=args.max_df,
                       field=args.field)
    removed_path = args.removed or str(args.out).rstrip("/") + ".contaminated.jsonl"
    with Job(args.out, strict=args.strict, name="decontaminate") as job, \
            AsideWriter(removed_path) as aside:
        for path, n in d.loaded.items():
            job.note(f"benchmark {path}: {n} questions")

        def kept(groups):
            for g in groups:
                hit = d.check(g)
                if hit is None:
                    yield g
                else:
                    job.skip("contaminated")
                    aside.write([dict(g, contamination=hit)])

        groups = progress(job.groups(args.input, args.layout, args.split), desc="decontaminate",
                          unit="group", disable=args.quiet)
        write_rows(job, args.out, kept(groups), fmt=args.out_format)
        if aside.count:
            job.note(f"{aside.count} contaminated groups written to {removed_path}")
    return 0
