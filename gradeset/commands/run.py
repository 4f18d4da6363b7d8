"""``gradeset run PIPELINE.yaml``: run a YAML pipeline in-process or on Ray."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("run", help="run a YAML pipeline (source -> steps -> outputs), resumable",
                       description="Run a pipeline file. Paths in the file are relative to the file's folder. "
                                   "Re-running the same command resumes: finished shards are not redone.")
    p.add_argument("pipeline", help="pipeline YAML file")
    p.add_argument("--runner", choices=["local", "ray"], default="local",
                   help="local: in-process streaming (default); ray: on a Ray cluster, workers read, process and write (extra 'ray')")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", dest="resume", action="store_true", default=True,
                   help="keep finished shards and do only the rest (default)")
    g.add_argument("--fresh", dest="resume", action="store_false", help="discard earlier output and start over")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line (exit 2)")
    p.add_argument("--check-only", action="store_true", help="validate the pipeline file and build its steps; run nothing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradeset.run.local import format_summary, prepare, run_pipeline

    if args.check_only:
        plan = prepare(args.pipeline)
        plan.close()
        names = " -> ".join(s.name for s in plan.specs) or "(no steps)"
        print(f"{args.pipeline}: ok: {plan.source.describe} -> {names} -> {plan.out}", file=sys.stderr)

        def part(idx: list[int]) -> str:
            return ", ".join(plan.specs[i].name for i in idx) or "-"

        print(f"  per chunk{' (checkpointed)' if plan.checkpointed else ''}: {part(plan.prefix)}; "
              f"whole stream (replayed on resume): {part(plan.middle)}; after them: {part(plan.tail)}",
              file=sys.stderr)
        for e in plan.pipeline.outputs.exports:
            print(f"  export {e.layout}{f' ({e.build.kind})' if e.build else ''} -> {e.path}", file=sys.stderr)
        return 0
    summary = run_pipeline(args.pipeline, runner=args.runner, resume=args.resume, progress=not args.quiet,
                           strict=args.strict, address=args.address, num_cpus=args.num_cpus)
    print(format_summary(summary), file=sys.stderr)
    checks = [summary.get("check") or {}] + list(summary.get("stage_checks") or [])
    return 1 if any(c and not c.get("passed", True) for c in checks) else 0
