"""``gradeset build {sft,dpo,grpo,kto} IN --out OUT``: graded groups into trainer datasets.

Counts add up per group, not per row, because one group can yield several pairs or
none: "read 100 groups = 80 used + 18 skipped (tied 18) + 2 rejected; wrote 160 pairs".
Groups a strategy cannot use because nothing in them is graded are *rejected* (they
go to the reject file with the reason); ties and other deliberate drops are *skipped*.
A stats sidecar ``OUT.stats.json`` is written beside the output (for ``sft
--strategy first-correct`` it has seed 004's keys).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradeset.commands._common import Job, add_input, add_output, add_quiet, progress, write_rows
from gradeset.commands._handoff import Handoff

KINDS = ("sft", "dpo", "grpo", "kto")
UNITS = {"sft": "examples", "dpo": "pairs", "grpo": "prompts", "kto": "rows"}


class BuildJob(Job):
    """A job whose summary counts groups in and rows out separately."""

    kind = "dpo"
    used = 0

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        line = f"read {self.read} groups = {self.used} used + {skipped} skipped"
        if self.skipped:
            line += " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) + ")"
        line += f" + {self.rejected} rejected; wrote {self.written} {UNITS.get(self.kind, 'rows')}"
        if self.rejected and self.rejects.path is not None:
            line += f"; rejects in {self.rejects.path}"
        return line


def located_groups(job: Job, path: str, layout: str | None, split: str | None, where: list):
    """Groups as ``job.groups`` reads them, noting in ``where[0]`` the input line of the current one.

    A group that a strategy rejects later (nothing graded) is then reported with its
    file and line, like a malformed line would be.
    """
    from gradeset.errors import GradesetError
    from gradeset.formats import ImportContext, detect_layout, import_rows
    from gradeset.io import iter_rows, peek_rows
    from gradeset.io.readers import is_empty

    p = Path(path)
    if not p.exists():
        raise GradesetError(f"{path}: no such file or folder")
    if is_empty(p):
        raise GradesetError(f"{path}: the file is empty")
    if layout is None:
        layout = detect_layout(peek_rows(path, 64, split=split), str(path))
    ctx = ImportContext(source=str(path), on_reject=job._on_reject)
    last: list = [None]

    def tracked():
        for loc, row in iter_rows(path, ctx.on_reject, split=split):
            last[0] = loc
            yield loc, row

    try:
        for g in import_rows(tracked(), layout, ctx):
            job.read += 1
            where[0] = last[0]
            yield g
    finally:
        for n in ctx.notes:
            job.note(n)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="shape graded groups into SFT, DPO, GRPO/GSPO/Dr. GRPO or KTO data",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=KINDS, help="dataset kind (grpo also serves GSPO and Dr. GRPO)")
    add_input(p)
    add_output(p)
    p.add_argument("--strategy", help="sft: best | all-correct | first-correct (default best); "
                   "dpo: best-worst | correct-vs-incorrect | all-pairs (default best-worst)")
    p.add_argument("--fallback", choices=["reference"], help="sft: use the reference solution when no "
                   "sample qualifies (seed 004)")
    p.add_argument("--max-attempts", type=int, help="sft first-correct: look at only the first N samples")
    p.add_argument("--min-score", type=float, help="sft best: least score of the best sample (default > 0)")
    p.add_argument("--min-margin", type=float, default=0.0, help="dpo: least score gap chosen - rejected")
    p.add_argument("--pairs-per-prompt", type=int, default=None,
                   help="dpo: pairs per group (default 1; all-pairs: all)")
    p.add_argument("--correct-threshold", type=float, default=1.0,
                   help="score at which a response without a 'correct' flag counts as correct")
    p.add_argument("--min-pass-rate", type=float, help="grpo: keep prompts with pass rate >= this")
    p.add_argument("--max-pass-rate", type=float, help="grpo: keep prompts with pass rate <= this")
    p.add_argument("--mixed-only", action="store_true",
                   help="grpo: keep only prompts with some right and some wrong samples (non-zero advantage)")
    p.add_argument("--keep-responses", action="store_true",
                   help="grpo: keep the graded samples (seed 001's offline group layout; implied by --to group)")
    p.add_argument("--no-dedup", action="store_true", help="kto: keep repeated identical completions")
    p.add_argument("--keep-duplicate-pairs", action="store_true",
                   help="dpo: keep a pair whose prompt, chosen and rejected were already written")
    p.add_argument("--seed", type=int, default=0, help="dpo: seed for choosing among equal candidates")
    p.add_argument("--to", dest="to_layout", help="output layout (default: trl-sft, trl-dpo, trl-prompt, "
                   "trl-kto); also gsm8k (seed 004's question/answer '#### 42'), verl, sharegpt, alpaca, openrlhf, group")
    p.add_argument("--conversational", action="store_true", help="chat messages instead of plain text")
    p.add_argument("--messages", action="store_true", help="sft: one 'messages' column (implies --conversational)")
    p.add_argument("--system-prompt", help="system prompt added to every prompt")
    p.add_argument("--data-source", help="verl / openrlhf: the data_source to write on every row (default: a "
                   "name verl's default reward knows when the task maps to one, else the source)")
    add_quiet(p)
    p.set_defaults(func=run)


def _iter_shaped(args, groups, stats: dict, on_skip):
    from gradeset.shape import iter_dpo, iter_grpo, iter_kto, iter_sft

    if args.kind == "dpo":
        strategy = args.strategy or "best-worst"
        k = args.pairs_per_prompt if args.pairs_per_prompt is not None else (None if strategy == "all-pairs" else 1)
        return iter_dpo(groups, strategy, min_margin=args.min_margin, pairs_per_prompt=k, seed=args.seed,
                        correct_threshold=args.correct_threshold, stats=stats, on_skip=on_skip,
                        dedup=not args.keep_duplicate_pairs)
    if args.kind == "sft":
        return iter_sft(groups, args.strategy or "best", args.fallback, min_score=args.min_score,
                        max_attempts=args.max_attempts, correct_threshold=args.correct_threshold,
                        stats=stats, on_skip=on_skip)
    if args.kind == "grpo":
        lo, hi = args.min_pass_rate, args.max_pass_rate
        if args.mixed_only:
            lo = max(lo or 0.0, 1e-9)
            hi = min(hi if hi is not None else 1.0, 1 - 1e-9)
        keep = args.keep_responses or args.to_layout in ("group", "gradeset", "groups", "seed001")
        return iter_grpo(groups, lo, hi, keep_responses=keep, stats=stats, on_skip=on_skip)
    return iter_kto(groups, correct_threshold=args.correct_threshold, dedup=not args.no_dedup, stats=stats,
                    on_skip=on_skip)


def _check_args(args) -> None:
    from gradeset.shape.scoring import ShapeError

    if args.kind != "sft" and (args.fallback or args.max_attempts or args.min_score is not None):
        raise ShapeError("--fallback, --max-attempts and --min-score apply to 'build sft' only")
    if args.kind != "dpo" and (args.min_margin or args.pairs_per_prompt is not None or args.keep_duplicate_pairs):
        raise ShapeError("--min-margin, --pairs-per-prompt and --keep-duplicate-pairs apply to 'build dpo' only")
    if args.kind != "grpo" and (args.min_pass_rate is not None or args.max_pass_rate is not None
                                or args.mixed_only or args.keep_responses):
        raise ShapeError("--min-pass-rate, --max-pass-rate, --mixed-only and --keep-responses apply to "
                         "'build grpo' only")
    if args.strategy and args.kind in ("grpo", "kto"):
        raise ShapeError(f"'build {args.kind}' has no --strategy")
    if args.pairs_per_prompt is not None and args.pairs_per_prompt < 1:
        raise ShapeError("--pairs-per-prompt must be >= 1")


def run(args) -> int:
    import orjson

    from gradeset.errors import GradesetError
    from gradeset.io import Reject, dumps
    from gradeset.io.atomic import write_bytes_atomic
    from gradeset.shape.rows import DEFAULT_LAYOUT, export

    _check_args(args)
    layout = args.to_layout or DEFAULT_LAYOUT[args.kind]
    stats: dict = {}
    with BuildJob(args.out, strict=args.strict, name=f"build {args.kind}") as job:
        job.kind = args.kind

        ungraded = [0]
        where: list = [None]

        def on_skip(group: dict, reason: str) -> None:
            if reason == "ungraded":
                ungraded[0] += 1
                job.rejects.add(Reject(str(args.input), where[0],
                                       f"group {group.get('id')}: no response has a score or a correct flag "
                                       "(run `gradeset verify` first)", dumps(group).decode()))
            else:
                job.skip(reason)

        from gradeset.io.card import Provenance, write_export_card

        seen = Provenance()
        groups = progress(seen.observe(located_groups(job, args.input, args.layout, args.split, where)),
                          desc=f"build {args.kind}", unit="group", disable=args.quiet)
        shaped = _iter_shaped(args, groups, stats, on_skip)
        opts = {"conversational": bool(args.conversational or args.messages), "system_prompt": args.system_prompt,
                "data_source": args.data_source}
        if args.messages:
            opts["messages"] = True
        rows = export(shaped, layout, **opts)

        def checked(rows):
            yield from rows
            job.used = stats.get("used", 0)
            if job.read and job.rejected and job.used == 0 and not job.skipped:
                # Raised inside the writer, so no empty output file is left behind.
                if ungraded[0]:
                    raise GradesetError(f"{args.input}: no group has graded responses, so 'build {args.kind}' has "
                                        "nothing to work with; run `gradeset verify` first (details in "
                                        f"{job.rejects.path})")
                raise GradesetError(f"{args.input}: every record was rejected, nothing to build (reasons in "
                                    f"{job.rejects.path})")

        from gradeset.formats import get_layout

        handoff = Handoff(get_layout(layout).name, args.out, opts["conversational"])
        n_rows = write_rows(job, args.out, handoff.watch(checked(rows)), fmt=args.out_format)
        handoff.finish(job.note)
        card = write_export_card(args.out, args.input, layout=layout, rows=n_rows, read=job.read,
                                 rejected=job.rejected, provenance=seen, step=f"build {args.kind}",
                                 params={k: v for k, v in stats.items() if isinstance(v, int | float | str)})
        if card is not None:
            job.note(f"dataset card: {card}")
        stats_path = Path(str(args.out).rstrip("/") + ".stats.json")
        write_bytes_atomic(stats_path, orjson.dumps(stats, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return 0
