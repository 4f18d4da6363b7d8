"""The in-process streaming runner: source chunks through the prefix steps into the engine.

The engine (:mod:`gradeset.run.engine`) owns the output folder and resume; the plan
(:mod:`gradeset.run.plan`) is the validated pipeline. This module only drives chunks;
with ``runner="ray"`` it hands the whole run to :mod:`gradeset.run.ray_runner` (workers
read, process and write) and keeps only the engine's bookkeeping here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator

import orjson

from gradeset.io import batched, write_bytes_atomic
from gradeset.run.accounting import StepError, apply_map_steps
from gradeset.run.engine import SUMMARY, Engine, already_complete
from gradeset.run.outputs import build_exports, run_check
from gradeset.run.pipeline import PipelineError
from gradeset.run.plan import Plan, prepare
from gradeset.run.summary import format_summary

__all__ = ["Engine", "Plan", "StepError", "apply_map_steps", "format_summary", "local_prefix", "prepare",
           "run_pipeline"]


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
                engine.note_chunk_counts(k, "prefix", counts)
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
        summary = _run(plan, runner=runner, resume=resume, progress=progress, strict=strict, address=address,
                       num_cpus=num_cpus, stream=stream)
        from gradeset.io.card import write_run_cards

        summary["cards"] = [str(p) for p in write_run_cards(plan.raw, summary)]  # README.md dataset cards
        return summary
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
    if runner == "ray":  # workers read, process and write; the driver only coordinates
        from gradeset.run import ray_runner

        with ray_runner.ray_session(plan, address, num_cpus) as ray:
            engine = Engine(plan, resume=resume, progress=progress, stream=stream, runner=runner,
                            fingerprint=ray_runner.worker_fingerprint(ray))
            reader = SourceReader(plan, strict=strict, stream=stream)
            try:
                read = ray_runner.run_on_ray(ray, engine, plan, reader.rejects, strict=strict)
            except BaseException:
                reader.rejects.close()
                engine.abort()
                raise
            reader.rejects.close()
            return engine.finish(read, reader.rejects.count, engine.stage_reports, engine.output_check)
    engine = Engine(plan, resume=resume, progress=progress, stream=stream, runner=runner)
    if progress:  # long steps show progress inside a chunk, not only per chunk
        for st in plan.steps:
            if hasattr(st, "show_progress"):
                st.show_progress = True
    reader = SourceReader(plan, strict=strict, stream=stream)
    results = None
    try:
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
