"""What a finished run writes besides its shards: exports, stage reports, the dataset check."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gradeset.errors import GradesetError
from gradeset.io import batched
from gradeset.io.readers import read_shards
from gradeset.run.pipeline import PipelineError, resolve_path
from gradeset.run.plan import Plan


def build_exports(plan: Plan, stream=None) -> list[dict]:
    """Each export is built from the finished shards and written atomically."""
    import sys

    from gradeset.commands._handoff import Handoff
    from gradeset.formats import get_layout
    from gradeset.io import open_writer
    from gradeset.run.pipeline import builder

    done = []
    for e in plan.pipeline.outputs.exports:
        path = resolve_path(e.path, plan.base)
        groups: Iterable[dict] = (r for _, r in read_shards(plan.out))
        stats: dict[str, Any] = {}
        if e.build is not None:
            groups = builder(e.build.kind)(groups, **e.build.options, stats=stats)
        rows = _export_rows(groups, e.layout, conversational=e.conversational, system_prompt=e.system_prompt,
                            data_source=e.data_source)
        handoff = Handoff(get_layout(e.layout).name, path, e.conversational)
        n = 0
        with open_writer(path) as w:
            for chunk in batched(handoff.watch(rows), 4096):
                w.write(chunk)
                n += len(chunk)
        handoff.finish(lambda m: print(f"note: {m}", file=stream if stream is not None else sys.stderr))
        done.append({"path": path, "layout": e.layout, "kind": e.build.kind if e.build else None,
                     "rows": n, "stats": stats})
    return done


def _export_rows(groups: Iterable[dict], layout: str, **opts) -> Iterator[dict]:
    try:
        from gradeset.shape.rows import export
    except ImportError:  # pragma: no cover
        from gradeset.formats import export_groups as export
    return export(groups, layout, **opts)


def write_stage_reports(plan: Plan, reports: dict[int, Any] | None = None) -> list[dict]:
    """Reports of ``check`` steps inside the pipeline (whole-stream steps: they saw every chunk).
    ``reports`` holds those computed elsewhere (on Ray workers), by step index."""
    out = []
    for i, step in enumerate(plan.steps):
        if plan.specs[i].name != "check" or not callable(getattr(step, "report", None)):
            continue
        rep = (reports or {}).get(i) or step.report()
        report, json_path = plan.stage_reports.get(i, (None, None))
        from gradeset.check.api import write_json
        from gradeset.check.report import write_report

        if json_path:
            write_json(rep, json_path)
        if report:
            write_report(rep, report)
        out.append({"step": i, "passed": rep.passed, "failed": [r.name for r in rep.failed], "report": report,
                    "json": json_path})
    return out


def check_params(plan: Plan) -> dict | None:
    """``outputs.check``'s settings as the check runner's parameters (options, tokenizer,
    test prompts, source), or None when there is no check; shared by the in-process check
    and the partitioned one on Ray workers, so both build the same runner."""
    spec = plan.pipeline.outputs.check
    if spec is None:
        return None
    test_prompts = None
    if spec.test:
        from gradeset.formats import read_groups
        from gradeset.records import prompt_text

        test_prompts = [prompt_text(g.get("prompt")) for g in read_groups(resolve_path(spec.test, plan.base))]
    tokenizer = spec.tokenizer
    if tokenizer and (plan.base / tokenizer).exists():
        tokenizer = resolve_path(tokenizer, plan.base)
    return {**dict(spec.options), "tokenizer": tokenizer, "test_prompts": test_prompts, "source": str(plan.out)}


def run_check(plan: Plan, summary: dict, computed: Any = None) -> dict | None:
    """The optional dataset check over the output groups (``gradeset.check``), with the
    run's per-step counts as the report's stage table. ``computed``: the report already
    computed over the shards elsewhere (by Ray workers); only the tables and files are
    added here."""
    spec = plan.pipeline.outputs.check
    if spec is None:
        return None
    try:
        from gradeset.check.api import check_groups, stage_counts, write_json
        from gradeset.check.report import write_report
    except ImportError as exc:  # pragma: no cover - the check package ships with gradeset
        raise PipelineError(f"outputs.check: the check package is not available: {exc}") from None
    stages = [stage_counts("source", counts={"groups": summary["read"] - summary["rejected"]},
                           rejected=summary["rejected"])]
    stages += [stage_counts(s["step"], counts=stage_numbers(s)) for s in summary["steps"]]
    report = resolve_path(spec.report, plan.base) if spec.report else None
    json_path = resolve_path(spec.json_path, plan.base) if spec.json_path else None
    try:
        if computed is None:
            params = check_params(plan) or {}
            rep = check_groups((r for _, r in read_shards(plan.out)), spec.options, tokenizer=params["tokenizer"],
                               test_prompts=params["test_prompts"], stages=stages, report=report,
                               json_path=json_path, source=params["source"], exports=summary.get("exports"))
        else:
            rep = computed
            rep.stages = stages
            rep.exports = [{k: e.get(k) for k in ("path", "layout", "kind", "rows")}
                           for e in summary.get("exports") or []]
            if json_path:
                write_json(rep, json_path)
            if report:
                write_report(rep, report)
    except GradesetError as exc:
        raise PipelineError(f"{plan.path}: outputs.check: {exc}") from None
    return {"passed": rep.passed, "failed": [r.name for r in rep.failed], "report": report, "json": json_path}


def stage_numbers(step: dict) -> dict:
    """A step's row of the report's "Counts per stage" table, from the run's counts."""
    rows = step.get("rows") or {}
    out: dict[str, Any] = {"groups": step["out"], "dropped": max(0, step["in"] - step["out"])}
    responses, scored = rows.get("responses"), rows.get("scored")
    if responses is not None:
        out["responses"] = responses
        out["coverage"] = scored / responses if responses else None
        out["accuracy"] = rows.get("correct", 0) / scored if scored else None
    return out
