"""The Ray Data runner: the same step objects, executed with ``Dataset.map_batches``.

Only the runner knows about Ray; steps are built inside Ray actors from their plain
parameters (``build_step(name, params)``), exactly as the in-process runner builds them.
The Ray part runs the pipeline's *prefix* (its leading map steps: generate, verify,
...), which is where the time goes; whole-stream steps (dedup, balance) and everything
after them run on the driver through the shared :class:`~gradeset.run.local.Engine`, so
both runners write the same shards and the same exports.

Known Ray Data pitfalls, and what this module does about them:

* **Actors taking every CPU deadlock the read tasks.** The actors of all stages share a
  budget of the cluster's CPUs minus one, with fractional ``num_cpus``.
* **Row order is not kept.** Every row carries its chunk index ``_chunk``; blocks are
  consumed with ``preserve_order`` and a row arriving for an earlier chunk is an error,
  so chunk ``k`` always becomes ``shard-0000k`` whatever the scheduling.
* **pandas batches leak memory and mangle nested fields.** Batches are ``pyarrow``
  tables; a group travels as its orjson bytes in a binary column (groups have free-form,
  mixed-type fields that no fixed Arrow schema holds), decoded with ``to_pylist``.
* **A failing step loses nothing finished.** An exception in a step is caught in the actor
  and travels as a row of its chunk, so the driver writes every earlier chunk first and
  then stops with the step's error; a re-run resumes from there.
* **Nothing is written twice.** Workers never write files (a retried task would write
  again); only the driver writes shards, atomically, with the chunk -> shard mapping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from gradeset.errors import require
from gradeset.run.pipeline import PipelineError

CHUNK, DATA, STATS = "_chunk", "_json", "_stats"
ERROR = "__error__"


class StageActor:
    """One Ray actor running consecutive map steps on each chunk's rows."""

    def __init__(self, specs: list[tuple[int, str, dict]]):
        from gradeset.steps import build_step

        self.indices = [i for i, _, _ in specs]
        self.steps: dict[int, Any] = {i: build_step(name, params) for i, name, params in specs}
        for i, name, _ in specs:
            with contextlib.suppress(AttributeError, TypeError):
                self.steps[i]._gradeset_name = name

    def __call__(self, table):
        import pyarrow as pa

        from gradeset.run.local import apply_map_steps

        chunks = table.column(CHUNK).to_pylist()
        data = table.column(DATA).to_pylist()
        stats = table.column(STATS).to_pylist()
        out_c: list[int] = []
        out_d: list[bytes | None] = []
        out_s: list[bytes | None] = []
        steps = [self.steps.get(i) for i in range(max(self.indices) + 1)]
        i = 0
        n = len(chunks)
        while i < n:
            if data[i] is None:  # a stats row of an earlier stage: pass it on
                out_c.append(chunks[i])
                out_d.append(None)
                out_s.append(stats[i])
                i += 1
                continue
            j = i
            while j < n and chunks[j] == chunks[i] and data[j] is not None:
                j += 1
            rows = [orjson.loads(b) for b in data[i:j]]
            try:
                rows, counts = apply_map_steps(steps, self.indices, rows, chunks[i])
            except Exception as exc:  # noqa: BLE001 - reported in chunk order by the driver
                rows, counts = [], {ERROR: str(exc)}
            from gradeset.io.writers import dumps

            for r in rows:
                out_c.append(chunks[i])
                out_d.append(dumps(r))
                out_s.append(None)
            out_c.append(chunks[i])
            out_d.append(None)
            out_s.append(orjson.dumps(counts))
            i = j
        return pa.table({CHUNK: pa.array(out_c, pa.int64()), DATA: pa.array(out_d, pa.binary()),
                         STATS: pa.array(out_s, pa.binary())})


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


def _init_ray(address: str | None, num_cpus: int | None):
    ray = require("ray", "ray", "the Ray runner (--runner ray)")
    require("ray.data", "ray", "the Ray runner (--runner ray)")
    if ray.is_initialized():
        return ray, False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=num_cpus, **kw)
    return ray, True


def _table(k: int, chunk: list[dict]):
    import pyarrow as pa

    from gradeset.io.writers import dumps

    n = len(chunk)
    return pa.table({CHUNK: pa.array([k] * n, pa.int64()), DATA: pa.array([dumps(g) for g in chunk], pa.binary()),
                     STATS: pa.array([None] * n, pa.binary())})


def ray_prefix(engine, plan, chunks: Iterable[list[dict]], *, address: str | None = None,
               num_cpus: int | None = None) -> Iterator[tuple[int, list[dict] | None, int]]:
    """Prefix outputs ``(chunk, rows | None, source rows)`` in chunk order, computed on Ray."""
    from gradeset.run.local import local_prefix

    if not plan.prefix:  # nothing for Ray to do: the whole pipeline is whole-stream steps
        yield from local_prefix(engine, plan, chunks)
        return
    ray, started = _init_ray(address or plan.pipeline.run.ray_address, num_cpus or plan.pipeline.run.ray_num_cpus)
    try:
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        import logging

        logging.getLogger("ray.data").setLevel(logging.WARNING)
        order: list[tuple[int, str, int]] = []
        refs = []
        for k, chunk in enumerate(chunks):
            if not engine.needs_prefix(k):
                order.append((k, "skip", len(chunk)))
            elif engine.prefix_cached(k):
                order.append((k, "ckpt", len(chunk)))
            else:
                order.append((k, "ray", len(chunk)))
                refs.append(ray.put(_table(k, chunk)))
        stream: Iterator[tuple[int, bytes | None, bytes | None]] = iter(())
        if refs:
            ds = ray.data.from_arrow_refs(refs)
            stages = _stages(plan)
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            budget = max(0.25, cpus - 1.0)  # leave a CPU for reads and the driver
            per_stage = budget / len(stages)
            for opts, specs in stages:
                conc = opts.get("concurrency") or max(1, int(per_stage))
                ncpu = opts.get("num_cpus") or round(per_stage / conc, 3)
                kw: dict[str, Any] = {"num_cpus": ncpu, "compute": ray.data.ActorPoolStrategy(size=conc)}
                if opts.get("num_gpus"):
                    kw["num_gpus"] = opts["num_gpus"]
                if opts.get("batch_size"):
                    kw["batch_size"] = opts["batch_size"]
                else:
                    kw["batch_size"] = None  # one block = one chunk, as the in-process runner batches
                ds = ds.map_batches(StageActor, fn_constructor_kwargs={"specs": specs}, batch_format="pyarrow",
                                    zero_copy_batch=True, **kw)
            stream = _rows(ds)
        yield from _merge(engine, plan, order, stream)
    finally:
        if started:
            ray.shutdown()


def _rows(ds) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from zip(table.column(CHUNK).to_pylist(), table.column(DATA).to_pylist(),
                       table.column(STATS).to_pylist())


def _add_counts(a: dict | None, b: dict) -> dict:
    """Counts of one step on one chunk, summed when Ray split the chunk into several batches."""
    from gradeset.run.accounting import add_numbers

    if a is None:
        return b
    return {"in": a.get("in", 0) + b.get("in", 0), "out": a.get("out", 0) + b.get("out", 0),
            "stats": add_numbers(dict(a.get("stats") or {}), b.get("stats")),
            "rows": add_numbers(dict(a.get("rows") or {}), b.get("rows"))}


def _merge(engine, plan, order, stream) -> Iterator[tuple[int, list[dict] | None, int]]:
    pending = next(stream, None)
    for k, kind, n in order:
        if kind == "skip":
            yield k, None, n
            continue
        if kind == "ckpt":
            yield k, engine.read_checkpoint(k), n
            continue
        rows: list[dict] = []
        counts: dict[str, dict] = {}
        while pending is not None and pending[0] <= k:
            c, data, stats = pending
            if c < k:
                raise PipelineError(f"Ray returned rows of chunk {c} after chunk {k} (order not preserved)")
            if data is not None:
                rows.append(orjson.loads(data))
            else:
                st = orjson.loads(stats)
                if ERROR in st:  # a step raised on a worker: every earlier chunk is written by now
                    from gradeset.run.local import StepError

                    raise StepError(f"on a Ray worker: {st[ERROR]}")
                for i, v in st.items():
                    counts[i] = _add_counts(counts.get(i), v)
            pending = next(stream, None)
        if plan.checkpointed:
            engine.record_prefix(k, rows, counts)
        else:
            engine.note_chunk_counts(k, "prefix", counts)
        yield k, rows, n
    if pending is not None:
        raise PipelineError(f"Ray returned rows for an unknown chunk {pending[0]}")
