"""``gradeset check IN``: dataset checks with a terminal table, JSON and an HTML report.

Exit codes gate CI: 0 every enabled check passed (warnings allowed), 1 a check failed,
2 the input could not be read at all.
"""

from __future__ import annotations

import argparse
import sys

from gradeset.commands._common import add_quiet, progress


def register(sub) -> None:
    p = sub.add_parser("check", help="check a dataset (group sizes, scores, coverage, duplicates, ...) "
                       "and write an HTML report", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="input file or shard folder, any readable layout")
    p.add_argument("--layout", help="input layout (detected from the fields when omitted)")
    p.add_argument("--split", help="split of a Hugging Face DatasetDict folder")
    p.add_argument("--mode", choices=["groups", "pairs", "kto"],
                   help="what the rows are (default: from the layout; trl-dpo -> pairs, trl-kto -> kto)")
    t = p.add_argument_group("thresholds")
    t.add_argument("--group-size", type=int, help="every group must have exactly N responses")
    t.add_argument("--min-coverage", type=float, default=0.8, help="min share of responses with a score (0.8)")
    t.add_argument("--max-zero-variance", type=float, default=0.5,
                   help="max share of groups all correct or all wrong: no GRPO signal (0.5)")
    t.add_argument("--max-invalid", type=int, default=0, help="max rows failing layout validation (0)")
    t.add_argument("--max-tied", type=float, default=0.0, help="max share of tied/identical/inverted pairs (0)")
    t.add_argument("--max-empty", type=int, default=0, help="max empty or whitespace texts (0)")
    t.add_argument("--max-duplicates", type=float, default=0.0, help="max share of exact duplicate prompts (0)")
    t.add_argument("--near-duplicate-threshold", type=float, default=0.8,
                   help="MinHash Jaccard at which prompts count as near duplicates (0.8)")
    t.add_argument("--max-near-duplicates", type=float, default=0.05,
                   help="max share of near-duplicate prompts (0.05)")
    t.add_argument("--test", help="test file: fail when training prompts overlap it")
    t.add_argument("--ngram", type=int, default=8, help="word n-gram size for --test overlap (8)")
    t.add_argument("--max-test-overlap", type=int, default=0, help="max prompts overlapping --test (0)")
    t.add_argument("--max-truncated", type=float, default=0.05,
                   help="max share of responses with finish_reason length (0.05)")
    t.add_argument("--max-length", type=int, help="fail when a response is longer (tokens or words)")
    t.add_argument("--iqr-factor", type=float, default=3.0, help="length outlier above Q3 + k*IQR (3)")
    t.add_argument("--label-band", type=float, nargs=2, default=(0.25, 0.75), metavar=("LOW", "HIGH"),
                   help="KTO: allowed share of desirable completions (0.25 0.75)")
    t.add_argument("--splits", nargs="+", metavar="PATH",
                   help="other split files (or a folder of them): fail when a prompt is in two splits")
    t.add_argument("--disable", nargs="+", default=[], metavar="NAME", help="checks to skip")
    t.add_argument("--warn-as-fail", action="store_true", help="exit 1 on warnings too (strict CI gate)")
    o = p.add_argument_group("output")
    o.add_argument("--report", help="write the self-contained HTML report here")
    o.add_argument("--json", dest="json_path", help="write the report as JSON here")
    o.add_argument("--stages", nargs="+", metavar="PATH",
                   help="earlier stages (data files, or a JSON list of {name, groups, ...}) for the "
                        "counts-per-stage table")
    o.add_argument("--tokenizer", help="local tokenizer folder: lengths in tokens instead of words")
    o.add_argument("--examples", type=int, default=20, help="failing rows listed per check (20)")
    o.add_argument("--sample", type=int, default=60, help="groups shown in the report's sample (60)")
    o.add_argument("--title", default="gradeset check report", help="report title")
    add_quiet(p)
    p.set_defaults(func=run)


def _config(args):
    from gradeset.check import CHECKS, CheckConfig
    from gradeset.errors import GradesetError

    disable = [n.strip() for item in args.disable for n in item.split(",") if n.strip()]
    unknown = sorted(set(disable) - set(CHECKS))
    if unknown:
        raise GradesetError(f"--disable: unknown checks {unknown}; known: {', '.join(CHECKS)}")
    for name in ("min_coverage", "max_zero_variance", "max_tied", "max_duplicates", "max_near_duplicates",
                 "max_truncated", "near_duplicate_threshold"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise GradesetError(f"--{name.replace('_', '-')}: expected a share in [0, 1], got {v}")
    return CheckConfig(
        group_size=args.group_size, min_coverage=args.min_coverage, max_zero_variance=args.max_zero_variance,
        max_invalid=args.max_invalid, max_tied=args.max_tied, max_empty=args.max_empty,
        max_duplicates=args.max_duplicates, near_duplicate_threshold=args.near_duplicate_threshold,
        max_near_duplicates=args.max_near_duplicates, ngram=args.ngram, max_test_overlap=args.max_test_overlap,
        max_truncated=args.max_truncated, iqr_factor=args.iqr_factor, max_length=args.max_length,
        label_band=tuple(args.label_band), mode=args.mode, disable=disable, examples=args.examples,
        sample=args.sample)


def _stage_rows(paths: list[str]) -> list[dict]:
    """Rows for the per-stage table from data files or a JSON list the runner wrote."""
    from pathlib import Path

    import orjson

    from gradeset.check.api import stage_counts
    from gradeset.check.reading import detect, groups_with_lines
    from gradeset.errors import GradesetError

    rows: list[dict] = []
    for path in paths:
        p = Path(path)
        if p.is_file() and p.suffix == ".json":
            try:
                data = orjson.loads(p.read_bytes())
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("stages"), list):
                rows.extend(s for s in data["stages"] if isinstance(s, dict))
                continue
            if isinstance(data, list) and data and all(isinstance(s, dict) and "name" in s for s in data):
                rows.extend(data)
                continue
        rejected = [0]

        def on_reject(_r, rejected=rejected):
            rejected[0] += 1

        try:
            layout = detect(p)
        except GradesetError as exc:
            raise GradesetError(f"--stages: {exc}") from exc
        rows.append(stage_counts(p.name, (g for _, _, g in groups_with_lines(p, layout, on_reject))))
        rows[-1]["rejected"] = rejected[0]
    return rows


def run(args) -> int:
    from pathlib import Path

    from gradeset.check import CheckRunner, write_report
    from gradeset.check.api import length_counter, stage_counts, write_json
    from gradeset.check.reading import detect, groups_with_lines, split_files, test_prompts
    from gradeset.check.summary import summary_table

    cfg = _config(args)
    layout = detect(args.input, args.layout, args.split)
    length_fn, unit = length_counter(args.tokenizer)
    tests = test_prompts(args.test) if args.test else None
    splits = split_files(args.splits, exclude=args.input) if args.splits else []
    stages = _stage_rows(args.stages) if args.stages else []

    runner = CheckRunner(cfg, layout=layout, length_fn=length_fn, unit=unit, test_prompts=tests,
                         splits=bool(args.splits), source=str(args.input), validated=layout == "group")
    notes: list[str] = []

    def on_reject(rej) -> None:
        runner.add_reject(rej.line, rej.reason, rej.source)

    items = groups_with_lines(args.input, layout, on_reject, split=args.split, notes=notes)
    for src, line, group in progress(items, desc="check", unit="group", disable=args.quiet):
        runner.add(group, line, src)
    for name, path in splits:
        for src, line, group in groups_with_lines(path, detect(path), on_reject):
            runner.add_split_group(group, src or name, line)
    report = runner.finish()
    report.inputs = [str(args.input), *(n for n, _ in splits)]
    stats = report.stats
    report.stages = [*stages, stage_counts(
        Path(args.input).name, rejected=runner.invalid,
        counts={k: stats[k] for k in ("groups", "responses", "coverage", "accuracy", "buckets")})]
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    print(summary_table(report))
    if args.json_path:
        write_json(report, args.json_path)
        print(f"wrote {args.json_path}", file=sys.stderr)
    if args.report:
        write_report(report, args.report, title=args.title)
        print(f"wrote {args.report}", file=sys.stderr)
    if args.warn_as_fail and any(r.status == "warn" for r in report.results):
        print("warnings count as failures (--warn-as-fail)", file=sys.stderr)
        return 1
    return report.exit_code
