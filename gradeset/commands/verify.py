"""``gradeset verify IN --out OUT --task T``: grade every response, print coverage and accuracy."""

from __future__ import annotations

import argparse
import json
import sys

from gradeset.commands._common import Job, add_input, add_output, add_quiet, progress, write_rows


def register(sub) -> None:
    p = sub.add_parser("verify", help="grade responses: fill score, correct, parsed",
                       description="Grade every response of every group with a verifier and write the groups.")
    add_input(p, nargs="?")
    add_output(p, required=False)
    p.add_argument("--audit", metavar="LABELLED",
                   help="instead of grading IN: audit the grader on human-labelled cases (as `gradeset audit`)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="with --audit: write the report as JSON")
    p.add_argument("--no-math-verify", action="store_true", help="with --audit: skip the math-verify column")
    p.add_argument("--write-baseline", metavar="PATH", help="with --audit: write the CI baseline")
    p.add_argument("--baseline", metavar="PATH", help="with --audit: exit 1 when worse than this baseline")
    p.add_argument("--task", "-t", default="math",
                   help="math, gsm8k, mcq, trivia, format, regex, code, judge, python:module:function, "
                        "or auto (each group's task field, which may only name a registered verifier: rows "
                        "naming code such as module:function go to the reject file, never imported)")
    p.add_argument("--workers", "-w", type=int, default=1,
                   help="grading processes (0: in this process, without a hard time limit)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per response before its worker is killed")
    p.add_argument("--format-tags", nargs="*", default=None, metavar="TAG",
                   help="read the answer from these tags first: solution (<SOLUTION>), answer (<answer>)")
    p.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="verifier option (JSON value or string), e.g. -O mode=strict -O precision=4")
    p.add_argument("--batch", type=int, default=256, help="groups per grading batch")
    p.add_argument("--to", dest="to_layout", default="group",
                   help="output layout (default group); e.g. seed003 writes one row per completion with "
                        "correctness_label and pred_parsed")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="code: run model-written programs WITHOUT isolation when no sandbox (bubblewrap / "
                        "util-linux unshare) is available; prints a warning on every run")
    add_quiet(p)
    p.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict:
    from gradeset.errors import GradesetError

    opts = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GradesetError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def _write_layout(job: Job, out: str, groups, layout: str, fmt: str | None, batch: int) -> int:
    """Export graded groups to another layout; the job counts groups, the return value rows."""
    from gradeset.formats import export_groups, get_layout
    from gradeset.io import batched, open_writer

    get_layout(layout)  # unknown layout: clear error before any work
    rows = 0
    with open_writer(out, fmt) as w:
        for chunk in batched(groups, batch):
            exported = list(export_groups(chunk, layout))
            w.write(exported)
            rows += len(exported)
            job.written += len(chunk)
    return rows


def accepted(job: Job, groups, grader, source: str):
    """Groups whose task the grader may use; the others go to the reject file, never imported.

    With ``--task auto`` a row's ``task`` must name a registered verifier: a dataset row
    saying ``builtins:exec`` is hostile input, not a plugin choice."""
    from gradeset.io import Reject

    for n, g in enumerate(groups, 1):
        why = grader.task_problem(g)
        if why is None:
            yield g
            continue
        gid = g.get("id")
        job.rejects.add(Reject(source, None, f"group {n}" + (f" (id {gid})" if gid is not None else "")
                               + f": {why}", g))


def run(args: argparse.Namespace) -> int:
    from gradeset.errors import GradesetError
    from gradeset.io import batched
    from gradeset.verify.groups import Grader

    if args.audit:
        from gradeset.commands import audit

        args.input = args.audit
        return audit.run(args)
    if not args.input or not args.out:
        raise GradesetError("verify needs IN and --out OUT (or --audit LABELLED.jsonl)")

    opts = parse_options(args.option)
    if args.format_tags:
        opts["tags"] = args.format_tags
    if getattr(args, "unsafe_no_sandbox", False):
        from gradeset.verify.code import UNSAFE_WARNING
        from gradeset.verify.registry import canonical_task

        print(f"verify: WARNING: {UNSAFE_WARNING}", file=sys.stderr)
        if canonical_task(args.task) in ("code", "auto"):
            opts["unsafe_no_sandbox"] = True
    grader = Grader(task=args.task, workers=args.workers, timeout=args.timeout, **opts)
    if args.task != "auto":
        grader.verifier(args.task)  # fail on a bad task or option before reading anything
    responses = 0
    with Job(args.out, strict=args.strict, name="verify") as job:
        def graded():
            nonlocal responses
            groups = accepted(job, job.groups(args.input, args.layout, args.split), grader, args.input)
            for batch in batched(progress(groups, desc="verify", unit="group", disable=args.quiet), args.batch):
                grader.grade(batch)
                responses += sum(len(g.get("responses") or []) for g in batch)
                yield from batch

        try:
            if args.to_layout == "group":
                write_rows(job, args.out, graded(), fmt=args.out_format)
            else:
                rows_out = _write_layout(job, args.out, graded(), args.to_layout, args.out_format, args.batch)
                job.note(f"wrote {rows_out} {args.to_layout} rows for {job.written} groups")
        finally:
            grader.close()
    s = grader.stats
    # coverage as seed 001 and `gradeset check` define it: the share of responses that got a
    # score (unparsed answers score 0 and count; failed generations stay unscored)
    scored = s["graded"] + s["unparsed"]
    coverage = scored / responses if responses else 0.0
    accuracy = s["correct"] / responses if responses else 0.0
    print(f"verify: {responses} responses: coverage {coverage:.1%} (scored {scored}, answer extracted from "
          f"{s['graded']}), accuracy {accuracy:.1%} (correct {s['correct']}), unparsed {s['unparsed']} "
          f"(truncated {s['truncated']}, timeouts {s['timeouts']}, errors {s['errors']}), "
          f"failed generations {s['failed_generations']}; decided by exact {s['path_exact']}, symbolic "
          f"{s['path_symbolic']}, judge {s['path_judge']}", file=sys.stderr)
    return 0
