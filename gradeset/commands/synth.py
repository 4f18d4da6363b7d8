"""``gradeset synth arithmetic``: seed 002's arithmetic DPO data, deduplicated and with a clean test set.

    gradeset synth arithmetic --out train.jsonl --test-out test.jsonl
    gradeset synth arithmetic --out groups.jsonl --layout group --negatives wrong-answer --n 5000
    gradeset synth arithmetic --out seed.jsonl --allow-duplicates     # the seed's ~400k rows

Layouts: ``seed002`` (default: ``positive``/``negative`` as the seed writes them), ``group``
(prompt, answer and [positive, negative] scored 1/0, for ``gradeset build dpo|grpo``) and
``trl-dpo`` (prompt/chosen/rejected). The test file is seed 002's ``{"question", "answer"}``.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("synth", help="synthetic prompt sources (arithmetic)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="synth_kind", metavar="KIND", required=True)
    a = kinds.add_parser("arithmetic", help="arithmetic questions (47-49=?, 50+x=77,x=?) with right and wrong answers, and a disjoint test file",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--out", "-o", required=True, help="training file (.jsonl, .parquet, .csv, ...)")
    a.add_argument("--test-out", help="test file of {question, answer} rows (prompts never in training)")
    a.add_argument("--n", type=int, default=400_000,
                   help="training rows (default 400000 as seed 002; without --allow-duplicates it is capped at "
                        "the 52,792 distinct questions minus the test ones, with a note)")
    a.add_argument("--test-n", type=int, default=400, help="test questions (default 400, as seed 002's ~404)")
    a.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same files")
    a.add_argument("--operators", default=None, metavar="OPS",
                   help="only these operators, e.g. '+-' (default: all of + - * /); the test file comes from the "
                        "same operators")
    a.add_argument("--negatives", choices=("refusal", "wrong-answer", "mixed"), default="refusal",
                   help="refusal (seed 002's 'Sorry, I don't know.'), wrong-answer (plausible: off by one, sign "
                        "flip, operator slip; verified wrong), or mixed (half each)")
    a.add_argument("--allow-duplicates", action="store_true",
                   help="sample as seed 002 does, repeats included (~88%% of 400k rows are repeats)")
    a.add_argument("--layout", choices=("seed002", "group", "trl-dpo"), default="seed002",
                   help="training layout (default seed002: positive/negative)")
    a.add_argument("--format", dest="out_format", help="output file format when the extension does not say")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradeset.errors import GradesetError
    from gradeset.io import write_rows
    from gradeset.io.atomic import atomic_open
    from gradeset.io.writers import output_format
    from gradeset.sources import arithmetic as arith

    if args.n < 0 or args.test_n < 0:
        raise GradesetError("--n and --test-n must be >= 0")
    try:
        res = arith.sample(args.n, args.seed, args.negatives, args.allow_duplicates, args.test_n, args.operators)
    except ValueError as exc:
        raise GradesetError(f"synth arithmetic: {exc}") from None
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    fmt = output_format(args.out, args.out_format)
    if args.layout == "seed002" and fmt == "jsonl" and not str(args.out).endswith(".gz"):
        with atomic_open(args.out, "wb") as fh:
            for chunk in arith.seed002_jsonl(res):
                fh.write(chunk)
        written = len(res.train)
    else:
        sp = arith.space()
        if args.layout == "seed002":
            rows = arith.seed002_rows(res)
        else:
            groups = (arith.group_of(sp, i, u) for i, u in zip(res.train, res.negatives))
            if args.layout == "group":
                rows = groups
            else:
                from gradeset.formats import export_groups

                rows = export_groups(groups, "trl-dpo")
        written = write_rows(args.out, rows, fmt=fmt)
    distinct = len(set(res.train))
    msg = (f"synth arithmetic: wrote {written} training rows ({distinct} distinct prompts; layout {args.layout}, "
           f"negatives {args.negatives}, seed {args.seed}) to {args.out}")
    if args.test_out:
        n_test = write_rows(args.test_out, arith.test_rows(res))
        msg += f"; {n_test} test questions to {args.test_out} (none in training)"
    print(msg, file=sys.stderr)
    return 0
