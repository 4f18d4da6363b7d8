"""The Ray runner: workers read, process and write every row; the driver only coordinates.

The driver holds object references and small reports (counts, shard checksums, rejects),
never rows, so its memory and CPU do not grow with the data. Per run:

1. **Read** on a worker: one task runs the same source reader as the in-process runner
   (same groups, ids, rejects) and yields batches of consecutive chunks of
   ``run.chunk_size`` groups (``run.ray_task_groups`` per batch, see
   :func:`_chunks_per_task`), each chunk marked run / skip (finished earlier) / cached
   (its prefix checkpoint, loaded there); its last item is the read report (count,
   rejects) for the driver's reject file.
2. **Prefix** (the leading map steps: generate, verify...): a batch per actor call, each
   chunk one call of the steps (steps built once per actor), chained stage to stage by
   reference. The last stage finishes each chunk in the same call: writes shard ``k``
   (no whole-stream step) or checkpoints and numbers it.
3. **Whole-stream steps** (dedup, balance, sample, check...): through
   ``gradeset.distributed.programs.run_partitioned`` on a
   :class:`~gradeset.distributed.ray_exec.RayExecutor` (Ray core tasks: hash-partitioned
   shuffles, mergeable partials), over the batches' blocks joined into a few per CPU. A
   step with no partitioned program (e.g. a user plugin with ``process``), or every step
   while that package is absent, runs in **one Ray task** over all rows, fed chunk by
   chunk as in-process: never on the driver. Map steps between them run per chunk
   (``group_reduce`` on the chunk).
4. **Write** on workers: with whole-stream steps, the tail steps and the write run per
   chunk in a ``group_reduce`` on ``ORD >> 32`` (the chunk the in-process engine puts the
   row in). Shards use the in-process writers (temp file + rename, deterministic names),
   so a retried task rewrites the same bytes. The driver records each shard from its
   report (:meth:`ShardWriter.add_written`) and writes the manifest (per interval, see
   :class:`_Progress`).
5. **outputs.check** on workers: each shard is read back by a task, then the partitioned
   check program.

Resume is exact as before: finished shards (checksum-verified) are skipped; with
whole-stream steps, each chunk's prefix output is checkpointed by the worker in
``OUT/.work/prefix`` and reloaded by the reader. Output and checkpoint folders must be
reachable from every node (one machine, or a shared filesystem).

Still on the driver (streamed from the written shards, flat memory): ``outputs.exports``.

Known Ray pitfalls, and what this module does about them:

* **Actors taking every CPU deadlock the other tasks.** Prefix actors share a budget of the
  cluster's CPUs minus one, with fractional ``num_cpus``; reading and writing tasks ask
  for fractions of the CPU left over.
* **Row order is not kept by Ray.** Chunks are numbered by the driver, rows carry ORD,
  and reports are recorded in chunk order: an error in chunk ``k`` is raised after every
  earlier chunk is recorded, as in-process.
* **pandas batches leak memory and mangle nested fields.** Tables are ``pyarrow`` with one
  binary column of orjson rows (free-form, mixed-type fields fit no fixed schema).
* **Ray Data's streaming executor polls in the driver.** Whole-stream steps use Ray core
  tasks (:mod:`gradeset.distributed.ray_exec`), so the driver's CPU does not grow with rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from gradeset.errors import GradesetError, require
from gradeset.run.pipeline import PipelineError

ERROR = "__error__"


def _init_ray(address: str | None, num_cpus: int | None):
    ray = require("ray", "ray", "the Ray runner (--runner ray)")
    if ray.is_initialized():
        return ray, False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=num_cpus, **kw)
    return ray, True


@contextlib.contextmanager
def ray_session(plan, address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for one run: connected (or started) before the engine opens the output folder, so
    the inputs are checksummed on a worker, and shut down after the summary (if started here)."""
    ray, started = _init_ray(address or plan.pipeline.run.ray_address, num_cpus or plan.pipeline.run.ray_num_cpus)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def worker_fingerprint(ray) -> Callable[[str], dict]:
    """``input_fingerprint`` run as a Ray task: hashing a large input is the one pass over its
    bytes the driver would otherwise make (twice: at the start and at the end of the run)."""
    from gradeset.io.shards import input_fingerprint

    task = ray.remote(input_fingerprint).options(num_cpus=0)
    return lambda path: ray.get(task.remote(str(path)))


def _stages(plan) -> list[tuple[dict, list[tuple[int, str, dict]]]]:
    """Consecutive prefix steps with the same Ray options share one actor stage."""
    stages: list[tuple[dict, list[tuple[int, str, dict]]]] = []
    for i in plan.prefix:
        spec = plan.specs[i]
        opts = spec.ray.model_dump(exclude_none=True)
        if stages and stages[-1][0] == opts:
            stages[-1][1].append((i, spec.name, spec.params))
        else:
            stages.append((opts, [(i, spec.name, spec.params)]))
    return stages


def _specs(plan, indices: list[int]) -> list[tuple[int, str, dict]]:
    return [(i, plan.specs[i].name, plan.specs[i].params) for i in indices]


class _Prefix:
    """Pools of prefix actors, one pool per stage; chunk ``k`` goes to actor ``k mod size``
    (one actor per stage processes its chunks in order, as in-process)."""

    def __init__(self, ray, plan):
        from gradeset.distributed.tasks import PrefixStage

        self.ray = ray
        stages = _stages(plan)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        per_stage = max(0.25, cpus - 1.0) / max(1, len(stages))  # leave a CPU for reads and writes
        actor = ray.remote(PrefixStage)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # a pool's actors go round-robin over the nodes (SPREAD alone may pack them on one);
        # soft, so an actor lost with its node restarts on another and redoes its chunks (a
        # chunk's prefix is a function of the chunk: redone is the same)
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU"))
        self.pools: list[list[Any]] = []
        for opts, specs in stages:
            size = opts.get("concurrency") or max(1, int(per_stage))
            kw: dict[str, Any] = {"num_cpus": opts.get("num_cpus") or round(per_stage / size, 3)}
            if opts.get("num_gpus"):
                kw["num_gpus"] = opts["num_gpus"]
            kw.update(max_restarts=3, max_task_retries=3)
            self.pools.append([actor.options(**kw, scheduling_strategy=NodeAffinitySchedulingStrategy(
                nodes[j % len(nodes)], soft=True) if nodes else "SPREAD").remote(specs) for j in range(size)])

    def submit(self, b: int, k0: int, entries, finish: tuple) -> tuple[Any, list[Any]]:
        """Batch ``b`` (chunks from ``k0``) through every stage; the last one finishes its
        chunks. Returns the output's reference and every stage's reports' reference."""
        metas = []
        for j, pool in enumerate(self.pools):
            last = j == len(self.pools) - 1
            entries, m = pool[b % len(pool)].run.options(num_returns=2).remote(k0, entries, finish if last else None)
            metas.append(m)
        return entries, metas

    def close(self) -> None:
        for pool in self.pools:
            for a in pool:
                with contextlib.suppress(Exception):
                    self.ray.kill(a)
        self.pools = []


class _Progress:
    """The run state and manifests saved at most every ``interval`` seconds, not per chunk.

    Saving per chunk rewrites files that list every chunk so far, so the driver's cost grew
    with the square of the chunk count (measured: most of its CPU growth after Ray Data's).
    A crash loses at most ``interval`` seconds of records; those shards are redone on
    resume and rewritten with the same bytes, so resume stays exact. The state is saved
    before the manifests, so a recorded shard always has its counts."""

    def __init__(self, engine, interval: float = 30.0):
        import time

        self.engine, self.interval, self.clock = engine, interval, time.monotonic
        self.last = self.clock()
        self.dirty = False

    def changed(self, *, now: bool = False) -> None:
        self.dirty = True
        if now or self.clock() - self.last >= self.interval:
            self.save()

    def save(self) -> None:
        if not self.dirty:
            return
        e = self.engine
        e._record_invocation()
        e._save_state()
        e.writer.save_progress()
        if e.ckpt is not None:
            e.ckpt.save_progress()
        self.last, self.dirty = self.clock(), False


def _merged_counts(metas: list[dict]) -> dict:
    counts: dict[str, Any] = {}
    for m in metas:
        if ERROR in m:
            from gradeset.run.accounting import StepError

            raise StepError(f"on a Ray worker: {m[ERROR]}")
        counts.update(m.get("counts") or {})
    return counts


def run_on_ray(ray, engine, plan, rejects, *, strict: bool) -> int:
    """Run the pipeline on Ray (inside :func:`ray_session`) into ``engine``'s output folder;
    returns the groups read (rejects go to ``rejects``, the run's RejectLog).
    ``engine.finish`` writes the rest."""
    prefix = None
    try:
        from gradeset.distributed import tasks

        prefix = _Prefix(ray, plan) if plan.prefix else None
        # short I/O tasks take no CPU slot: a slot they waited for could be held by an actor
        # that only finishes after them (after a node is lost, the actors outnumber the CPUs)
        per_task = _chunks_per_task(plan)
        skip = frozenset(k for k in engine.final_done if not engine.needs_prefix(k))
        resume = (skip, frozenset(engine.ckpt_done) if engine.ckpt is not None else frozenset(),
                  str(engine.ckpt.folder) if engine.ckpt is not None else None)
        reader = ray.remote(tasks.read_chunks).options(num_cpus=0.5, num_returns="streaming")
        # short I/O tasks take no CPU slot: a slot they waited for could be held by an actor
        # that only finishes after them (after a node is lost, the actors outnumber the CPUs)
        finish_only = ray.remote(tasks.entries_task).options(num_cpus=0, num_returns=2)
        if not plan.middle:
            finish: tuple = ("write", str(plan.out), plan.pipeline.outputs.groups.format)
        else:
            finish = ("checkpoint", str(engine.ckpt.folder)) if engine.ckpt is not None else ("number",)
        out, fmt = str(plan.out), plan.pipeline.outputs.groups.format
        progress = _Progress(engine)
        pending: list[tuple[int, list[Any]]] = []  # (first chunk, its stages' report refs)
        tables: list[Any] = []  # with whole-stream steps: every batch's numbered rows (refs)
        middle_in = _Counted()  # the first whole-stream step's input, from the chunks' reports

        def record(k0: int, meta_refs: list[Any]) -> None:
            stages = ray.get(meta_refs)
            for j in range(len(stages[-1])):
                k = k0 + j
                metas = [stage[j] for stage in stages]
                counts = _merged_counts(metas)  # raises a worker's error, after the chunks before it
                last = metas[-1]
                status = last.get("status", "run")
                engine.chunks = max(engine.chunks, k + 1)
                if engine._bar is not None:
                    engine._bar.update(plan.pipeline.run.chunk_size)
                if status == "skip":
                    engine.skipped_chunks += 1
                    continue
                middle_in.add(last)
                if status == "cached":
                    continue
                engine.check_unchanged_before(k)
                engine.note_chunk_counts(k, "prefix", counts)
                if not plan.middle:
                    engine.writer.add_written(last["report"], save=False)
                elif engine.ckpt is not None and "report" in last:  # a checkpointed prefix
                    engine.ckpt.add_written(last["report"], save=False)
                progress.changed()

        def drain(wait_all: bool) -> None:
            while pending:
                k0, metas = pending[0]
                if not wait_all and not ray.wait([metas[-1]], timeout=0)[0]:
                    return
                pending.pop(0)
                record(k0, metas)

        gen = reader.remote(plan.source, plan.pipeline.run.chunk_size, strict, per_task, resume)
        b = -1
        held = None
        try:
            for ref in gen:
                if held is not None:
                    b += 1
                    k0 = b * per_task
                    if prefix is not None:
                        block, metas = prefix.submit(b, k0, held, finish)
                    else:
                        block, meta = finish_only.remote(k0, held, finish)
                        metas = [meta]
                    if plan.middle:
                        tables.append(block)
                    pending.append((k0, metas))
                    drain(wait_all=False)
                held = ref
            report = ray.get(held)
            for r in report["rejects"]:
                rejects.add(r)  # --strict raises here, at the first bad line
            if report.get("error") is not None:
                raise report["error"]
            drain(wait_all=True)
        finally:
            progress.save()  # what finished is kept for resume, even when a later chunk failed
        engine.chunks = report["chunks"]
        if prefix is not None:
            prefix.close()
        if engine._bar is not None:
            engine._bar.update(report["read"] - engine._bar.n)
        if plan.middle:
            try:
                _whole_stream(ray, engine, plan, tables, report["chunks"], out, fmt, progress, middle_in)
            finally:
                progress.save()
        engine.output_check = _output_check(ray, engine, plan)
        return report["read"]
    except ray.exceptions.RayTaskError as exc:  # an error in gradeset code on a worker: as in-process
        cause = getattr(exc, "cause", None)
        if isinstance(cause, GradesetError):
            raise cause from None
        raise PipelineError(f"a Ray task failed: {cause if cause is not None else exc}") from None
    except ray.exceptions.RayError as exc:  # a node or worker lost beyond Ray's retries
        raise PipelineError(f"the Ray cluster lost work it could not redo ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}). Finished shards are kept: re-run "
                            "the same command to resume") from None
    finally:
        if prefix is not None:
            prefix.close()


def _chunks_per_task(plan) -> int:
    """How many consecutive chunks one Ray task carries (``run.ray_task_groups``)."""
    run = plan.pipeline.run
    groups = run.ray_task_groups
    if groups is None:
        model_bound = any(plan.specs[i].name == "generate" or plan.specs[i].ray.num_gpus for i in plan.prefix)
        groups = run.chunk_size if model_bound else 8192
    return max(1, min(64, groups // run.chunk_size))


class _Counted:
    """Rows entering the first whole-stream step, summed from the chunks' reports (every
    finished or checkpoint-loaded chunk reports its rows), so no pass over the blocks counts them."""

    def __init__(self):
        self.n = 0

    def add(self, meta: dict) -> None:
        self.n += meta.get("n", 0)


def _whole_stream(ray, engine, plan, tables: list[Any], chunks: int, out: str, fmt: str, progress: _Progress,
                  middle_in: _Counted) -> None:
    """The middle steps, then the tail and the shard writes per chunk. Rows stay in the
    object store as a list of block references from step to step; the driver submits
    tasks and merges small partials (counts, statistics, shard reports)."""
    from gradeset.distributed.ray_exec import RayDataset, RayExecutor
    from gradeset.distributed.tasks import ORD, add_counts, count_rows, run_per_chunk, tail_and_write
    from gradeset.run.accounting import StepError, add_numbers, apply_map_steps
    from gradeset.run.plan import is_stream_step

    ex = RayExecutor()
    ds = RayDataset(_coalesced(ray, tables, 4 * ex.partitions)) if tables else ex.dataset([], blocks=1)

    def counted(d) -> tuple[int, dict]:
        return ex.aggregate(d, count_rows, add_counts, (0, {}))

    n_in: int | None = middle_in.n
    engine.stage_reports = {}
    for i in plan.middle:
        spec, step = plan.specs[i], plan.steps[i]
        stats: dict = {}
        if is_stream_step(step) and _program(step) is None:  # one task over every row
            table, meta = _single_task(ray, ds.refs, i, spec, chunks)
            ds = RayDataset([table])
            n_in, n_out, rows, stats = meta["in"], meta["out"], meta["rows"], meta.get("stats") or {}
            if meta.get("report") is not None:
                engine.stage_reports[i] = meta["report"]
        else:
            if n_in is None:
                n_in, _ = counted(ds)
            if is_stream_step(step):
                from gradeset.distributed import programs

                res, stats, report = programs.run_partitioned(step, ex, ds)
                stats = dict(stats or {})
                if report is not None:
                    engine.stage_reports[i] = report
            else:  # a map step between whole-stream steps: per chunk, as in-process
                res = ex.group_reduce(ds, lambda r: str(r[ORD] >> 32), run_per_chunk([(i, spec.name, spec.params)]))
            ds = ex.materialize(res)
            if not is_stream_step(step):
                err = ex.aggregate(ds, lambda rows: [r[ERROR] for r in rows if ERROR in r], lambda a, b: a + b, [])
                if err:
                    raise StepError(f"on a Ray worker: {sorted(err)[0]}")
            n_out, rows = counted(ds)
        c = engine.counts[i]
        c.n_in, c.n_out, c.rows = c.n_in + n_in, c.n_out + n_out, add_numbers(dict(c.rows), rows)
        add_numbers(engine.run_stats.setdefault(i, {}), stats)
        n_in = n_out
    done = frozenset(engine.final_done)
    reports = ex.aggregate(ex.group_reduce(ds, lambda r: str(r[ORD] >> 32),
                                           tail_and_write(_specs(plan, plan.tail), out, fmt, done)),
                           lambda rs: list(rs), lambda a, b: a + b, [])
    by_chunk = {r["chunk"]: r for r in reports}
    errors = sorted((r["chunk"], r["error"]) for r in reports if "error" in r)
    for k in range(chunks):
        if k in done:
            continue
        r = by_chunk.get(k)
        if r is not None and "error" in r:
            break
        engine.check_unchanged_before(k)
        if r is None:  # no row of this chunk survived: an empty shard, as in-process
            _, counts = apply_map_steps(plan.steps, plan.tail, [], k)
            engine.note_chunk_counts(k, "tail", counts)
            progress.changed(now=True)  # the counts are saved before the shard is recorded
            engine.writer.write_shard(k, [])  # saves the manifest (rare: an empty shard)
            continue
        engine.note_chunk_counts(k, "tail", r["counts"])
        engine.writer.add_written(r["report"], save=False)
        progress.changed()
    if errors:
        raise StepError(f"on a Ray worker: {errors[0][1]}")


def _coalesced(ray, tables: list[Any], blocks: int) -> list[Any]:
    """The chunk tables joined into at most ``blocks`` blocks of consecutive chunks (one task
    per block): the whole-stream steps' per-block tasks are then a few per CPU, not one per
    chunk, which kept the driver's work growing with the rows."""
    from gradeset.distributed.tasks import concat_blocks

    if len(tables) <= blocks:
        return tables
    concat = ray.remote(concat_blocks).options(num_cpus=0)
    size = -(-len(tables) // blocks)
    return [concat.remote(*tables[i:i + size]) for i in range(0, len(tables), size)]


def _output_check(ray, engine, plan) -> Any:
    """``outputs.check``'s report, computed by workers over the written shards (each read by
    a task, then the partitioned check program); None when there is no check, or when the
    partitioned programs are unavailable (the driver then checks, streaming the shards)."""
    from gradeset.run.outputs import check_params

    params = check_params(plan)
    if params is None:
        return None
    try:
        from gradeset.distributed.programs.check import run_check
    except ImportError:
        return None
    from gradeset.distributed.ray_exec import RayDataset, RayExecutor
    from gradeset.distributed.tasks import read_shard

    read = ray.remote(read_shard).options(num_cpus=0.5)
    folder = engine.writer.folder
    refs = [read.remote(k, str(folder / meta["name"])) for k, meta in sorted(engine.writer.shards.items())]
    ex = RayExecutor()
    report, _ = run_check(ex, RayDataset(refs) if refs else ex.dataset([], blocks=1), params)
    return report


def _program(step) -> Any:
    """The step's partitioned program, or None (none written for it, or the package absent)."""
    try:
        from gradeset.distributed import programs
    except ImportError:
        return None
    return programs.program_for(step)


def _single_task(ray, refs: list[Any], i: int, spec, chunks: int) -> tuple[Any, dict]:
    """A whole-stream step without a partitioned program, in one Ray task over every row."""
    from gradeset.distributed.tasks import stream_step_task
    from gradeset.run.accounting import StepError

    task = ray.remote(stream_step_task).options(num_returns=2, num_cpus=1)
    table, meta = task.remote(i, spec.name, spec.params, chunks, *refs)
    meta = ray.get(meta)
    if meta.get("error"):
        raise StepError(f"on a Ray worker: {meta['error']}")
    return table, meta
