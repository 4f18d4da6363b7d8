"""The chunk/shard engine both runners share: resume state, shard writes, the summary.

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gradeset.errors import GradesetError
from gradeset.io import ShardWriter, read_manifest, write_bytes_atomic
from gradeset.io.shards import input_fingerprint
from gradeset.run.accounting import StepCount, _numeric, add_numbers, apply_map_steps, row_totals, step_error
from gradeset.run.outputs import build_exports, run_check, write_stage_reports
from gradeset.run.pipeline import PipelineError
from gradeset.run.plan import Plan, is_stream_step

SUMMARY = "run.json"
WORK = ".work"  # the prefix checkpoint, removed when the run completes
STATE = ".run-state.json"  # per-chunk step counts, so a resumed run reports whole-run counts


class Engine:
    """Owns the output folder: resume state, shard writes, the summary, the exports."""

    def __init__(self, plan: Plan, *, resume: bool = True, progress: bool = True, stream=None,
                 runner: str = "local", fingerprint: Callable[[str], dict] = input_fingerprint):
        self.plan = plan
        # checksums of the inputs, at the start and at the end (the Ray runner hashes on a worker,
        # so the driver's CPU does not grow with the input's size)
        self.fingerprint = fingerprint
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
                                      resume=resume, fingerprint=fingerprint)
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
        # Step stats (requests, generated, cached ...) are kept per invocation of the command, so a
        # resumed run reports both what this invocation did and what the whole job did (the sum).
        self.invocation = f"{int(self.started * 1000)}-{os.getpid()}"
        self.run_stats: dict[int, dict] = {}  # per-chunk steps: what this invocation's chunks counted
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
        self.stage_reports: dict[int, Any] = {}  # check steps' reports computed on Ray workers
        self.output_check: Any = None  # outputs.check's report computed on Ray workers
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

    def note_chunk_counts(self, k: int, part: str, counts: dict) -> None:
        """Record a chunk's per-step counts (prefix or tail), for the job and for this invocation."""
        self._chunk_state(k)[part] = counts
        for i, c in counts.items():
            add_numbers(self.run_stats.setdefault(int(i), {}), c.get("stats"))

    def _record_invocation(self) -> None:
        """This invocation's step stats, saved with each chunk (a kill -9 loses at most one chunk's).

        Stats are the steps' own counters (requests, generated, cached ...). Whole-stream steps
        are replayed over every chunk on resume and a failed chunk is redone, so per-chunk
        records would miss or repeat work; per invocation, the job's totals are the sum.
        Steps run by this process report their live counters; the Ray runner's prefix steps
        run on workers, whose per-chunk counts arrive here instead."""
        remote = set(range(len(self.plan.steps))) if self.runner == "ray" else set()
        self.state.setdefault("invocations", {})[self.invocation] = {
            str(i): dict(self.run_stats.get(i, {})) if i in remote else _numeric(getattr(st, "stats", None))
            for i, st in enumerate(self.plan.steps)}

    def invocation_stats(self) -> tuple[dict[int, dict], dict[int, dict]]:
        """(this invocation's stats, the whole job's) per step index."""
        self._record_invocation()
        mine = {int(i): dict(v) for i, v in self.state["invocations"][self.invocation].items()}
        job: dict[int, dict] = {}
        for inv in self.state["invocations"].values():
            for i, v in inv.items():
                add_numbers(job.setdefault(int(i), {}), v)
        return mine, job

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
        self.note_chunk_counts(k, "prefix", counts)
        self._record_invocation()
        self._save_state()
        if self.ckpt is not None:
            self.ckpt.write_shard(k, rows)

    # -- the stream ----------------------------------------------------------------------

    def consume(self, prefix_results: Iterable[tuple[int, list[dict] | None, int]]) -> None:
        """Drive prefix outputs ``(chunk, rows or None if skipped, source rows)`` to shards."""
        plan = self.plan
        if not plan.middle:  # map steps only: a chunk is complete as soon as its rows arrive
            for k, rows, n_in in prefix_results:
                if not self._arrived(k, rows, n_in):
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
                if not self._arrived(k, rows, n_in):
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

    def _arrived(self, k: int, rows: list[dict] | None, n_in: int) -> bool:
        """Count a chunk's arrival; False when it was skipped (finished on an earlier run)."""
        self.chunks = max(self.chunks, k + 1)
        if self._bar is not None:
            self._bar.update(n_in)
        if rows is None:
            self.skipped_chunks += 1
            return False
        return True

    def _wrap(self, i: int, it: Iterator[list[dict]]) -> Iterator[list[dict]]:
        step, count = self.plan.steps[i], self.counts[i]

        def counted_in(src):
            for b in src:
                count.n_in += len(b)
                yield b

        def counted_out(src):
            for b in src:
                b = list(b)
                count.n_out += len(b)
                add_numbers(count.rows, row_totals(b))
                yield b

        def mapped(src):
            for b in src:
                try:
                    yield step(b)
                except Exception as exc:
                    raise step_error(i, step, exc) from exc

        out = step.process(counted_in(it)) if is_stream_step(step) else mapped(counted_in(it))
        for b in counted_out(out):
            if b:
                yield b

    def check_unchanged_before(self, k: int) -> None:
        """Cheap size/mtime test per chunk; the checksums are compared at the end."""
        changed = [p for p, st in self.start_stats.items() if _stat(p) != st]
        if changed:
            raise PipelineError(f"input changed during the run: {', '.join(changed)}; stopped before writing "
                                f"shard {k}. Finished shards hold the old content: re-run with --fresh")

    def _finish_chunk(self, k: int) -> None:
        self.check_unchanged_before(k)
        rows = self._buffers.pop(k, [])
        if k in self.final_done:
            return
        rows, counts = apply_map_steps(self.plan.steps, self.plan.tail, rows, k)
        self.note_chunk_counts(k, "tail", counts)
        self._record_invocation()
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
        mine, job = self.invocation_stats()
        out = []
        for i, c in enumerate(self.counts):
            d = c.as_dict()
            d["stats"] = {k: v for k, v in job.get(i, {}).items() if v}
            d["this_run"] = {k: v for k, v in mine.get(i, {}).items() if v}
            out.append(d)
        return out

    def check_inputs_unchanged(self) -> None:
        changed = []
        for path, sha in self.start_inputs.items():
            p = Path(path)
            if not p.exists() or self.fingerprint(path)["sha256"] != sha:
                changed.append(path)
        if changed:
            raise PipelineError(f"input changed during the run: {', '.join(changed)} (checksum differs from the "
                                "one recorded at the start); shards may mix two versions of the data. The run "
                                "is left incomplete; re-run with --fresh")

    def finish(self, read: int, rejected: int, reports: dict | None = None, output_check: Any = None) -> dict:
        """The summary; ``reports``: stage check reports computed on Ray workers, by step;
        ``output_check``: ``outputs.check``'s report computed on Ray workers."""
        if self._bar is not None:
            self._bar.close()
        self.check_inputs_unchanged()
        self.writer.close()
        stage_checks = write_stage_reports(self.plan, reports)
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
        summary["check"] = run_check(self.plan, summary, output_check)
        write_bytes_atomic(self.plan.out / SUMMARY, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        shutil.rmtree(self.work, ignore_errors=True)
        return summary

    def abort(self) -> None:
        if self._bar is not None:
            self._bar.close()
        with contextlib.suppress(Exception):  # keep this invocation's counts for the resumed run's totals
            self._record_invocation()
            self._save_state()
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
