"""The in-process streaming runner, and the chunk/shard engine both runners share.

The source is cut into fixed-size chunks; chunk ``k`` becomes shard ``k`` of the output
folder. That deterministic mapping is what makes resume exact: a shard listed in the
manifest with a matching checksum is finished and never written again, and a killed run
rewrites only the shard it was in the middle of (atomically: no half shard is ever
visible). Seed 003 "resumed" by appending new shards and regenerating everything;
here a re-run does only the missing chunks.

Steps are split in three runs of the pipeline:

* **prefix**: the leading map steps (``step(batch)``: generate, verify, ...), run per
  chunk. These are the expensive ones, so when whole-stream steps follow, their output
  per chunk is checkpointed in ``OUT/.work/prefix`` and never recomputed on resume.
* **middle**: from the first to the last whole-stream step (``process(batches)``:
  dedup, balance, ...). Their state spans chunks, so on resume they are replayed over
  every chunk (cheap: they read the checkpoint); rows they emit for finished shards
  are dropped, not rewritten. A row is attributed to the chunk the source was on when
  the step emitted it, which is deterministic.
* **tail**: map steps after the last whole-stream step, run only for unfinished shards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gradeset.errors import GradesetError
from gradeset.io import ShardWriter, batched, read_manifest, write_bytes_atomic
from gradeset.io.readers import read_shards
from gradeset.io.shards import input_fingerprint
from gradeset.run.pipeline import (
    Pipeline,
    PipelineError,
    StepSpec,
    input_paths,
    load_pipeline,
    resolve_params,
    resolve_path,
)
from gradeset.run.source import Source, open_source

SUMMARY = "run.json"
WORK = ".work"  # the prefix checkpoint, removed when the run completes
STATE = ".run-state.json"  # per-chunk step counts, so a resumed run reports whole-run counts


def is_stream_step(step: Any) -> bool:
    return callable(getattr(step, "process", None))


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """A validated pipeline with its steps built and its paths resolved."""

    pipeline: Pipeline
    base: Path
    raw: dict
    path: str
    specs: list[StepSpec]
    steps: list[Any]
    source: Source
    out: Path
    inputs: list[str]
    prefix: list[int] = field(default_factory=list)
    middle: list[int] = field(default_factory=list)
    tail: list[int] = field(default_factory=list)
    stage_reports: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def parameters(self) -> dict:
        """What a resumed run must share with the first: the pipeline as written."""
        return orjson.loads(orjson.dumps({"pipeline": self.raw, "runner_version": 1}))

    @property
    def checkpointed(self) -> bool:
        return bool(self.prefix) and bool(self.middle)

    def close(self) -> None:
        for s in self.steps:
            close = getattr(s, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):  # closing must not mask the run's result
                    close()


def split_steps(steps: list[Any]) -> tuple[list[int], list[int], list[int]]:
    stream = [i for i, s in enumerate(steps) if is_stream_step(s)]
    if not stream:
        return list(range(len(steps))), [], []
    first, last = stream[0], stream[-1]
    return list(range(first)), list(range(first, last + 1)), list(range(last + 1, len(steps)))


def prepare(pipeline_path: str | os.PathLike, *, build: bool = True) -> Plan:
    """Load, validate and build everything up front, so no error appears mid-run."""
    pipe, base, raw = load_pipeline(pipeline_path)
    where = str(pipeline_path)
    out = Path(resolve_path(pipe.outputs.groups.path, base))
    try:
        source = open_source(pipe.source, base)
    except PipelineError as exc:
        raise PipelineError(f"{where}: {exc}") from None
    for src in source.inputs:
        if _inside(src, out) or _inside(str(out), Path(src)):
            raise PipelineError(f"{where}: source.path {src} and outputs.groups {out} overlap; a run would read "
                                "what it writes (and --fresh would delete its own input)")
    specs: list[StepSpec] = []
    steps: list[Any] = []
    inputs = list(source.inputs)
    from gradeset.steps import build_step

    stage_reports: dict[int, tuple[str | None, str | None]] = {}
    for i, s in enumerate(pipe.steps):
        params = resolve_params(s.params, base)
        if s.name == "check":  # a stage check: the runner owns its report files (steps write nothing)
            report, json_path = params.pop("report", None), params.pop("json", None)
            if report or json_path:
                stage_reports[i] = (resolve_path(report, base) if report else None,
                                    resolve_path(json_path, base) if json_path else None)
        spec = StepSpec(name=s.name, params=params, ray=s.ray)
        specs.append(spec)
        for p in input_paths(params):
            if p not in inputs and not _inside(p, out):
                inputs.append(p)
        if build:
            try:
                built = build_step(s.name, params)
                with contextlib.suppress(AttributeError, TypeError):
                    built._gradeset_name = s.name  # for error messages
                steps.append(built)
            except GradesetError as exc:
                raise PipelineError(f"{where}: steps[{i}].{s.name}: {exc}") from None
            except Exception as exc:  # a step's own validation (ValueError, pydantic, ...)
                raise PipelineError(f"{where}: steps[{i}].{s.name}: {type(exc).__name__}: {exc}") from None
    plan = Plan(pipeline=pipe, base=base, raw=raw, path=where, specs=specs, steps=steps, source=source,
                out=out, inputs=inputs, stage_reports=stage_reports)
    if build:
        plan.prefix, plan.middle, plan.tail = split_steps(steps)
    return plan


def _inside(p: str, folder: Path) -> bool:
    try:
        Path(p).resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- step accounting


@dataclass
class StepCount:
    name: str
    kind: str  # map | stream
    n_in: int = 0
    n_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, other: dict) -> None:
        self.n_in += other.get("in", 0)
        self.n_out += other.get("out", 0)
        for k, v in (other.get("stats") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.stats[k] = self.stats.get(k, 0) + v

    def as_dict(self) -> dict:
        return {"step": self.name, "kind": self.kind, "in": self.n_in, "out": self.n_out, "stats": self.stats}


def _numeric(stats: Any) -> dict[str, float]:
    if not isinstance(stats, dict):
        return {}
    return {k: v for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def stats_delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


class StepError(GradesetError):
    """A step raised while running: named by its place in the pipeline; finished shards stay."""


def step_error(i: int, step: Any, exc: BaseException, chunk: int | None = None) -> StepError:
    import traceback

    if isinstance(exc, StepError):
        return exc
    name = getattr(step, "_gradeset_name", None) or type(step).__name__
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    on = f" on chunk {chunk}" if chunk is not None else ""
    return StepError(f"steps[{i}] {name} failed{on}: {type(exc).__name__}: {exc}{where}. Finished shards are "
                     "kept: fix the cause and re-run the same command to resume")


def apply_map_steps(steps: list[Any], indices: list[int], rows: list[dict], chunk: int | None = None
                    ) -> tuple[list[dict], dict]:
    """Run map steps in order on one chunk; returns rows and per-step {in, out, stats delta}."""
    counts: dict[str, dict] = {}
    for i in indices:
        step = steps[i]
        before = _numeric(getattr(step, "stats", None))
        n_in = len(rows)
        try:
            rows = list(step(rows)) if rows else rows
        except Exception as exc:
            raise step_error(i, step, exc, chunk) from exc
        counts[str(i)] = {"in": n_in, "out": len(rows), "stats": stats_delta(before, _numeric(getattr(step, "stats", None)))}
    return rows, counts


# --------------------------------------------------------------------------- engine


class Engine:
    """Owns the output folder: resume state, shard writes, the summary, the exports."""

    def __init__(self, plan: Plan, *, resume: bool = True, progress: bool = True, stream=None,
                 runner: str = "local"):
        self.plan = plan
        self.stream = stream if stream is not None else sys.stderr
        self.runner = runner
        self.started = time.time()
        out = plan.out
        fmt = plan.pipeline.outputs.groups.format
        previous = read_manifest(out) if out.exists() else None
        self.work = out / WORK
        self.state_path = out / STATE
        if not resume:
            shutil.rmtree(self.work, ignore_errors=True)
            (out / SUMMARY).unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)
        elif previous is not None and previous.get("parameters", {}) != plan.parameters:
            raise PipelineError(f"{out}: holds the output of a different pipeline (the YAML changed); re-run "
                                "with --fresh to start over, or write to another outputs.groups.path")
        self.resumed = resume and previous is not None
        try:  # the writer checksums the inputs once and compares them with the manifest's
            self.writer = ShardWriter(out, shard_format=fmt, parameters=plan.parameters, inputs=plan.inputs,
                                      resume=resume)
        except GradesetError as exc:
            if "changed since" not in str(exc):
                raise
            changed = [i["path"] for i in (previous or {}).get("inputs", [])
                       if f"input {i['path']} changed" in str(exc)] or ["an input"]
            raise PipelineError(f"input {', '.join(changed)} changed since {out} was started (checksum differs "
                                "from its manifest.json); the finished shards hold the old content. Re-run "
                                "with --fresh to rebuild from the new input, or write to another "
                                "outputs.groups.path") from None
        self.start_inputs = {i["path"]: i["sha256"] for i in self.writer.inputs}
        self.start_stats = {p: _stat(p) for p in self.start_inputs}
        self.final_done = self.writer.finished() if resume else set()
        self.state = self._load_state() if resume else {"chunks": {}}
        self.ckpt: ShardWriter | None = None
        self.ckpt_done: set[int] = set()
        if plan.checkpointed:
            self.ckpt = ShardWriter(self.work / "prefix", shard_format="jsonl", parameters=plan.parameters,
                                    inputs=[], resume=resume)  # inputs are guarded by the main manifest
            self.ckpt_done = self.ckpt.finished()
        self.counts = [StepCount(s.name, "stream" if is_stream_step(st) else "map")
                       for s, st in zip(plan.specs, plan.steps)]
        self.rejects = None
        self.read = 0
        self.chunks = 0
        self.skipped_chunks = 0
        self.missing_stats = 0
        self._buffers: dict[int, list[dict]] = {}
        self._bar = None
        if progress and not os.environ.get("GRADESET_NO_PROGRESS"):
            from tqdm import tqdm

            self._bar = tqdm(total=plan.source.total, desc=f"run ({runner})", unit="groups", file=self.stream,
                             dynamic_ncols=True, mininterval=0.5)

    # -- state ---------------------------------------------------------------------------

    def _load_state(self) -> dict:
        p = self.state_path
        if p.exists():
            try:
                st = orjson.loads(p.read_bytes())
                if st.get("parameters") == self.plan.parameters:
                    return st
            except orjson.JSONDecodeError:
                pass
        return {"chunks": {}}

    def _save_state(self) -> None:
        self.state["parameters"] = self.plan.parameters
        write_bytes_atomic(self.state_path, orjson.dumps(self.state))

    def _chunk_state(self, k: int) -> dict:
        return self.state["chunks"].setdefault(str(k), {})

    # -- what a chunk needs --------------------------------------------------------------

    def needs_prefix(self, k: int) -> bool:
        """False when chunk k is finished and nothing downstream needs its rows again."""
        return not (k in self.final_done and not self.plan.middle)

    def prefix_cached(self, k: int) -> bool:
        return self.ckpt is not None and k in self.ckpt_done

    def read_checkpoint(self, k: int) -> list[dict]:
        from gradeset.io.shards import shard_name

        assert self.ckpt is not None
        return [r for _, r in read_shards_file(self.ckpt.folder / shard_name(k, "jsonl"))]

    def record_prefix(self, k: int, rows: list[dict], counts: dict) -> None:
        """Save the chunk's prefix counts (before its rows, so a finished shard always has them)."""
        self._chunk_state(k)["prefix"] = counts
        self._save_state()
        if self.ckpt is not None:
            self.ckpt.write_shard(k, rows)

    # -- the stream ----------------------------------------------------------------------

    def consume(self, prefix_results: Iterable[tuple[int, list[dict] | None, int]]) -> None:
        """Drive prefix outputs ``(chunk, rows or None if skipped, source rows)`` to shards."""
        plan = self.plan
        if not plan.middle:  # map steps only: a chunk is complete as soon as its rows arrive
            for k, rows, n_in in prefix_results:
                self.chunks = max(self.chunks, k + 1)
                if self._bar is not None:
                    self._bar.update(n_in)
                if rows is None:
                    self.skipped_chunks += 1
                    continue
                self._buffers[k] = rows
                self._finish_chunk(k)
            return
        current = [-1]

        def feeder() -> Iterator[list[dict]]:
            for k, rows, n_in in prefix_results:
                if current[0] >= 0:
                    self._finish_chunk(current[0])
                current[0] = k
                self.chunks = max(self.chunks, k + 1)
                if self._bar is not None:
                    self._bar.update(n_in)
                if rows is None:
                    self.skipped_chunks += 1
                    continue
                if rows:
                    yield rows

        it: Iterator[list[dict]] = feeder()
        for i in plan.middle:
            it = self._wrap(i, it)
        for batch in it:
            if batch:
                self._buffers.setdefault(current[0], []).extend(batch)
        if current[0] >= 0:
            self._finish_chunk(current[0])

    def _wrap(self, i: int, it: Iterator[list[dict]]) -> Iterator[list[dict]]:
        step, count = self.plan.steps[i], self.counts[i]

        def counted_in(src):
            for b in src:
                count.n_in += len(b)
                yield b

        def mapped(src):
            for b in src:
                try:
                    yield step(b)
                except Exception as exc:
                    raise step_error(i, step, exc) from exc

        out = step.process(counted_in(it)) if is_stream_step(step) else mapped(counted_in(it))
        for b in out:
            b = list(b)
            count.n_out += len(b)
            if b:
                yield b

    def _finish_chunk(self, k: int) -> None:
        changed = [p for p, st in self.start_stats.items() if _stat(p) != st]
        if changed:  # cheap size/mtime test per chunk; the checksums are compared at the end
            raise PipelineError(f"input changed during the run: {', '.join(changed)}; stopped before writing "
                                f"shard {k}. Finished shards hold the old content: re-run with --fresh")
        rows = self._buffers.pop(k, [])
        if k in self.final_done:
            return
        rows, counts = apply_map_steps(self.plan.steps, self.plan.tail, rows, k)
        self._chunk_state(k)["tail"] = counts
        self._save_state()
        self.writer.write_shard(k, rows)

    # -- the end -------------------------------------------------------------------------

    def step_counts(self) -> list[dict]:
        plan = self.plan
        missing: set[int] = set()
        for i in plan.prefix + plan.tail:
            part = "prefix" if i in plan.prefix else "tail"
            for k in range(self.chunks):
                c = self.state["chunks"].get(str(k), {}).get(part, {}).get(str(i))
                if c is None:
                    missing.add(k)
                    continue
                self.counts[i].add(c)
        self.missing_stats = len(missing)
        for i in plan.middle:
            self.counts[i].stats = dict(_numeric(getattr(plan.steps[i], "stats", None)))
        return [c.as_dict() for c in self.counts]

    def check_inputs_unchanged(self) -> None:
        changed = []
        for path, sha in self.start_inputs.items():
            p = Path(path)
            if not p.exists() or input_fingerprint(p)["sha256"] != sha:
                changed.append(path)
        if changed:
            raise PipelineError(f"input changed during the run: {', '.join(changed)} (checksum differs from the "
                                "one recorded at the start); shards may mix two versions of the data. The run "
                                "is left incomplete; re-run with --fresh")

    def finish(self, read: int, rejected: int) -> dict:
        if self._bar is not None:
            self._bar.close()
        self.check_inputs_unchanged()
        self.writer.close()
        stage_checks = write_stage_reports(self.plan)
        steps = self.step_counts()
        summary = {
            "pipeline": self.plan.path,
            "runner": self.runner,
            "output": str(self.plan.out),
            "read": read,
            "rejected": rejected,
            "written": self.writer.count,
            "shards": len(self.writer.shards),
            "chunks_skipped_on_resume": self.skipped_chunks,
            "resumed": self.resumed,
            "steps": steps,
            "exports": [],
            "seconds": round(time.time() - self.started, 3),
        }
        if self.missing_stats:
            summary["note"] = f"step counts of {self.missing_stats} resumed chunk(s) were not recorded"
        if stage_checks:
            summary["stage_checks"] = stage_checks
        summary["exports"] = build_exports(self.plan, self.stream)
        summary["check"] = run_check(self.plan, summary)
        write_bytes_atomic(self.plan.out / SUMMARY, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        shutil.rmtree(self.work, ignore_errors=True)
        return summary

    def abort(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.ckpt is not None:
            self.ckpt.abort()
        self.writer.abort()


def _stat(path: str) -> tuple:
    p = Path(path)
    try:
        if p.is_dir():
            return tuple(sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in p.rglob("*") if f.is_file()))
        st = p.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return ("missing",)


def already_complete(plan: Plan) -> bool:
    """A finished run of the same pipeline on the same inputs: nothing to redo but the exports."""
    from gradeset.io.atomic import sha256_file
    from gradeset.io.shards import verify_inputs

    m = read_manifest(plan.out) if plan.out.exists() else None
    if not m or not m.get("complete") or m.get("parameters") != plan.parameters:
        return False
    if not (plan.out / SUMMARY).exists() or verify_inputs(m):
        return False
    if sorted(i["path"] for i in m.get("inputs", [])) != sorted(plan.inputs):
        return False
    for s in m.get("shards", []):
        f = plan.out / s["name"]
        if not f.exists() or sha256_file(f) != s["sha256"]:
            return False
    return True


def read_shards_file(path: Path) -> Iterator[tuple[int, dict]]:
    from gradeset.io.readers import read_jsonl

    return read_jsonl(path)


# --------------------------------------------------------------------------- exports & check


def build_exports(plan: Plan, stream=None) -> list[dict]:
    """Each export is built from the finished shards and written atomically."""
    from gradeset.io import open_writer
    from gradeset.run.pipeline import builder

    done = []
    for e in plan.pipeline.outputs.exports:
        path = resolve_path(e.path, plan.base)
        groups: Iterable[dict] = (r for _, r in read_shards(plan.out))
        stats: dict[str, Any] = {}
        if e.build is not None:
            groups = builder(e.build.kind)(groups, **e.build.options, stats=stats)
        rows = _export_rows(groups, e.layout, conversational=e.conversational, system_prompt=e.system_prompt)
        n = 0
        with open_writer(path) as w:
            for chunk in batched(rows, 4096):
                w.write(chunk)
                n += len(chunk)
        done.append({"path": path, "layout": e.layout, "kind": e.build.kind if e.build else None,
                     "rows": n, "stats": stats})
    return done


def _export_rows(groups: Iterable[dict], layout: str, **opts) -> Iterator[dict]:
    try:
        from gradeset.shape.rows import export
    except ImportError:  # pragma: no cover
        from gradeset.formats import export_groups as export
    return export(groups, layout, **opts)


def write_stage_reports(plan: Plan) -> list[dict]:
    """Reports of ``check`` steps inside the pipeline (whole-stream steps: they saw every chunk)."""
    out = []
    for i, step in enumerate(plan.steps):
        if plan.specs[i].name != "check" or not callable(getattr(step, "report", None)):
            continue
        rep = step.report()
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


def run_check(plan: Plan, summary: dict) -> dict | None:
    """The optional dataset check over the output groups (``gradeset.check``), with the
    run's per-step counts as the report's stage table."""
    spec = plan.pipeline.outputs.check
    if spec is None:
        return None
    try:
        from gradeset.check.api import check_groups, stage_counts
    except ImportError as exc:  # pragma: no cover - the check package ships with gradeset
        raise PipelineError(f"outputs.check: the check package is not available: {exc}") from None
    test_prompts = None
    if spec.test:
        from gradeset.formats import read_groups
        from gradeset.records import prompt_text

        test_prompts = [prompt_text(g.get("prompt")) for g in read_groups(resolve_path(spec.test, plan.base))]
    tokenizer = spec.tokenizer
    if tokenizer and (plan.base / tokenizer).exists():
        tokenizer = resolve_path(tokenizer, plan.base)
    stages = [stage_counts("source", counts={"groups": summary["read"] - summary["rejected"]},
                           rejected=summary["rejected"])]
    stages += [stage_counts(s["step"], counts={"groups": s["out"], "dropped": max(0, s["in"] - s["out"])})
               for s in summary["steps"]]
    report = resolve_path(spec.report, plan.base) if spec.report else None
    json_path = resolve_path(spec.json_path, plan.base) if spec.json_path else None
    try:
        rep = check_groups((r for _, r in read_shards(plan.out)), spec.options, tokenizer=tokenizer,
                           test_prompts=test_prompts, stages=stages, report=report, json_path=json_path,
                           source=str(plan.out))
    except GradesetError as exc:
        raise PipelineError(f"{plan.path}: outputs.check: {exc}") from None
    return {"passed": rep.passed, "failed": [r.name for r in rep.failed], "report": report, "json": json_path}


# --------------------------------------------------------------------------- the runner


def local_prefix(engine: Engine, plan: Plan, chunks: Iterable[list[dict]]
                 ) -> Iterator[tuple[int, list[dict] | None, int]]:
    for k, chunk in enumerate(chunks):
        if not engine.needs_prefix(k):
            yield k, None, len(chunk)
        elif engine.prefix_cached(k):
            yield k, engine.read_checkpoint(k), len(chunk)
        else:
            rows, counts = apply_map_steps(plan.steps, plan.prefix, chunk, k)
            if plan.checkpointed:
                engine.record_prefix(k, rows, counts)
            else:
                engine._chunk_state(k)["prefix"] = counts
            yield k, rows, len(chunk)


class SourceReader:
    """Source groups in chunks, counting reads and keeping bad lines in the reject file."""

    def __init__(self, plan: Plan, strict: bool = False, stream=None):
        from gradeset.io import RejectLog, rejects_path_for

        self.plan = plan
        self.read = 0
        self.rejects = RejectLog(rejects_path_for(plan.out), strict=strict, stream=stream)

    def _on_reject(self, reject) -> None:
        self.read += 1
        self.rejects.add(reject)

    def groups(self) -> Iterator[dict]:
        for g in self.plan.source.groups(self._on_reject):
            self.read += 1
            yield g

    def chunks(self) -> Iterator[list[dict]]:
        return batched(self.groups(), self.plan.pipeline.run.chunk_size)


def run_pipeline(pipeline_path: str | os.PathLike, *, runner: str = "local", resume: bool = True,
                 progress: bool = True, strict: bool = False, address: str | None = None,
                 num_cpus: int | None = None, stream=None) -> dict:
    """Run a pipeline file; returns the summary (also saved as OUT/run.json)."""
    stream = stream if stream is not None else sys.stderr
    plan = prepare(pipeline_path)
    try:
        return _run(plan, runner=runner, resume=resume, progress=progress, strict=strict, address=address,
                    num_cpus=num_cpus, stream=stream)
    except OSError as exc:
        raise PipelineError(_os_error_message(exc, plan)) from None
    finally:
        plan.close()


def _run(plan: Plan, *, runner: str, resume: bool, progress: bool, strict: bool, address: str | None,
         num_cpus: int | None, stream) -> dict:
    if runner not in ("local", "ray"):
        raise PipelineError(f"unknown runner {runner!r}; choose local or ray")
    if resume and already_complete(plan):
        prev = orjson.loads((plan.out / SUMMARY).read_bytes())
        prev["exports"] = build_exports(plan, stream)
        prev["check"] = run_check(plan, prev)
        prev["already_complete"] = True
        write_bytes_atomic(plan.out / SUMMARY, orjson.dumps(prev, option=orjson.OPT_INDENT_2))
        return prev
    engine = Engine(plan, resume=resume, progress=progress, stream=stream, runner=runner)
    reader = SourceReader(plan, strict=strict, stream=stream)
    results = None
    try:
        if runner == "ray":
            from gradeset.run.ray_runner import ray_prefix

            results = ray_prefix(engine, plan, reader.chunks(), address=address, num_cpus=num_cpus)
        else:
            results = local_prefix(engine, plan, reader.chunks())
        engine.consume(results)
    except BaseException:
        if results is not None:
            results.close()  # ends a Ray session this run started
        reader.rejects.close()
        engine.abort()
        raise
    reader.rejects.close()
    return engine.finish(reader.read, reader.rejects.count)


def _os_error_message(exc: OSError, plan: Plan) -> str:
    import errno

    where = exc.filename or f"the output under {plan.out}"
    msg = f"I/O error on {where}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        msg += " (disk full or file-size limit)"
    return (f"{msg}. Finished shards in {plan.out} are kept and verified by checksum: free space and re-run the "
            "same command to resume")


def format_summary(summary: dict) -> str:
    """The per-step table printed at the end of a run."""
    lines = []
    if summary.get("already_complete"):
        lines.append(f"{summary['output']}: already complete (re-run with --fresh to rebuild); exports rebuilt")
    lines.append(f"{'step':<16} {'kind':<7} {'in':>10} {'out':>10}  stats")
    for s in summary["steps"]:
        stats = ", ".join(f"{k}={v}" for k, v in sorted(s["stats"].items()) if v)
        lines.append(f"{s['step']:<16} {s['kind']:<7} {s['in']:>10} {s['out']:>10}  {stats}")
    dropped = sum(max(0, s["in"] - s["out"]) for s in summary["steps"])
    added = sum(max(0, s["out"] - s["in"]) for s in summary["steps"])
    line = (f"read {summary['read']}, written {summary['written']} groups in {summary['shards']} shards, "
            f"rejected {summary['rejected']}, dropped by steps {dropped}")
    if added:
        line += f", added by steps {added}"
    if summary.get("chunks_skipped_on_resume"):
        line += f"; resumed: {summary['chunks_skipped_on_resume']} finished chunk(s) not redone"
    lines.append(line)
    lines.append(f"groups -> {summary['output']} ({summary.get('seconds', 0):.1f}s, {summary.get('runner', 'local')})")
    for e in summary.get("exports", []):
        lines.append(f"export {e['layout']:<10} {e['rows']:>8} rows -> {e['path']}")
    if summary.get("check"):
        c = summary["check"]
        lines.append(f"check: {'passed' if c.get('passed') else 'FAILED: ' + ', '.join(c.get('failed', []))}"
                     + (f"; report {c['report']}" if c.get("report") else "")
                     + (f"; json {c['json']}" if c.get("json") else ""))
    for c in summary.get("stage_checks", []):
        lines.append(f"check at steps[{c['step']}]: {'passed' if c['passed'] else 'FAILED: ' + ', '.join(c['failed'])}"
                     + (f"; report {c['report']}" if c.get("report") else ""))
    if summary.get("note"):
        lines.append(f"note: {summary['note']}")
    return "\n".join(lines)
