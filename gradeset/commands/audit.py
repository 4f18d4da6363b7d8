"""``gradeset audit LABELLED.jsonl``: how often the grader agrees with human labels, by category."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", "-w", type=int, default=1, help="grading processes (0: in this process)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per case before its worker is killed")
    p.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="verifier option, as for `gradeset verify` (e.g. -O fallback=judge -O model=...)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--no-math-verify", action="store_true", help="do not grade the cases with math-verify too")
    p.add_argument("--write-baseline", metavar="PATH",
                   help="write right verdicts and false positives per category (the CI baseline) to PATH")
    p.add_argument("--baseline", metavar="PATH",
                   help="exit 1 when any category's false positives grew or right verdicts dropped vs PATH")


def register(sub) -> None:
    p = sub.add_parser("audit", help="grade human-labelled cases: precision, recall, false positives by category",
                       description="Grade labelled cases (task, completion, gold, expected, category, why) and "
                                   "report precision, recall, false positives and false negatives per category, "
                                   "beside math-verify when it is installed.")
    p.add_argument("input", help="labelled JSONL")
    add_audit_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradeset.commands.verify import parse_options
    from gradeset.errors import GradesetError
    from gradeset.io import RejectLog, rejects_path_for
    from gradeset.verify import audit

    src = Path(args.input)
    if not src.is_file():
        raise GradesetError(f"{args.input}: no such file")
    opts = parse_options(args.option)
    rejects = RejectLog(rejects_path_for(args.json_out or args.input), stream=sys.stderr)
    with rejects:
        cases = audit.read_cases(str(src), rejects.add)
    if not cases:
        raise GradesetError(f"{args.input}: no usable labelled cases")
    report = audit.audit(cases, workers=args.workers, timeout=args.timeout,
                         math_verify=not args.no_math_verify, **opts)
    report["rejected"] = rejects.count
    print(audit.table(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json_out}", file=sys.stderr)
    if args.write_baseline:
        Path(args.write_baseline).write_text(json.dumps(audit.baseline_of(report), indent=2, sort_keys=True) + "\n",
                                             encoding="utf-8")
        print(f"wrote {args.write_baseline}", file=sys.stderr)
    code = 0
    if args.baseline:
        worse = audit.regressions(report, json.loads(Path(args.baseline).read_text(encoding="utf-8")))
        for w in worse:
            print(f"audit: worse than baseline: {w}", file=sys.stderr)
        code = 1 if worse else 0
    read = len(cases) + rejects.count
    print(f"audit: read {read}, graded {len(cases)}, rejected {rejects.count}"
          + (f"; rejects in {rejects.path}" if rejects.count else ""), file=sys.stderr)
    return 2 if rejects.count else code
