"""What the Ray runner's workers do, as plain functions of rows, so the driver only
passes object references and small reports around and never holds a row.

A chunk travels between workers as a one-column Arrow table of orjson-encoded rows (the
:mod:`gradeset.distributed.ray_exec` encoding). Before the first whole-stream step each
row gets :data:`ORD` ``(chunk << 32) | position``: sorting by it is the in-process
runner's order, and ``ORD >> 32`` is the chunk (and so the shard) a row belongs to, as
the in-process engine attributes a row to the chunk the source was on when it was emitted.
Steps never see ORD: it is taken off before a step runs and put back after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import orjson

from gradeset.distributed.executor import ORD, Rows
from gradeset.distributed.ray_exec import _decode, _encode

POSITION_BITS = 32
ERROR = "__error__"


def chunk_of(row: dict) -> int:
    return int(row[ORD]) >> POSITION_BITS


def with_ord(k: int, rows: Rows) -> Rows:
    """Rows of chunk ``k`` numbered in their order (a copy: the caller's rows stay as they are)."""
    return [{**r, ORD: (k << POSITION_BITS) | p} for p, r in enumerate(rows)]


def without_ord(rows: Rows) -> Rows:
    return [{k: v for k, v in r.items() if k != ORD} for r in rows]


# -- steps built once per worker process ----------------------------------------------

_BUILT: dict[bytes, Any] = {}


def built_step(i: int, name: str, params: dict) -> Any:
    """The step object for ``steps[i]``, built once per worker process (a model loads once)."""
    from gradeset.steps import build_step

    key = orjson.dumps([i, name, params], option=orjson.OPT_SORT_KEYS)
    if key not in _BUILT:
        step = build_step(name, params)
        with contextlib.suppress(AttributeError, TypeError):
            step._gradeset_name = name
        _BUILT[key] = step
    return _BUILT[key]


def steps_list(specs: list[tuple[int, str, dict]]) -> list[Any]:
    """A list indexed like the pipeline's steps, holding the built steps of ``specs``."""
    steps: list[Any] = [None] * (max((i for i, _, _ in specs), default=-1) + 1)
    for i, name, params in specs:
        steps[i] = built_step(i, name, params)
    return steps


# -- reading ---------------------------------------------------------------------------

def read_chunks(source, chunk_size: int, strict: bool, per_item: int = 1,
                resume: tuple[frozenset, frozenset, str | None] | None = None) -> Iterator[Any]:
    """The source's groups as batches of up to ``per_item`` chunks, then one last item: the
    read report ``{"read": n, "rejects": [Reject, ...], "chunks": c, "error": GradesetError | None}``.

    A batch is a list of entries ``(status, table)``, one per chunk in order: ``"run"`` with
    the chunk's encoded rows; ``"skip"`` (no table) for a chunk finished on an earlier run
    that nothing downstream needs; ``"cached"`` with the chunk's checkpointed prefix output
    (numbered) for one whose prefix an earlier run saved (``resume``: the skip and cached
    chunk numbers and the checkpoint folder). The same reader code as the in-process
    runner, so rows, ids and rejects are the same; with ``strict`` reading stops at the
    first reject and the driver raises for it."""
    from gradeset.io import batched

    skip, cached, ckpt = resume or (frozenset(), frozenset(), None)
    rejects: list = []
    read = [0]

    class _Stop(Exception):
        pass

    def on_reject(r) -> None:
        read[0] += 1
        rejects.append(r)
        if strict:
            raise _Stop

    def groups():
        for g in source.groups(on_reject):
            read[0] += 1
            yield g

    def entry(k: int, chunk: Rows) -> tuple[str, Any]:
        if k in skip:
            return "skip", None
        if k in cached and ckpt is not None:
            from gradeset.io.shards import shard_name

            return "cached", load_checkpoint(k, f"{ckpt}/{shard_name(k, 'jsonl')}")
        return "run", _encode(chunk)

    from gradeset.errors import GradesetError

    chunks = 0
    error = None
    batch: list[tuple[str, Any]] = []
    try:
        for chunk in batched(groups(), chunk_size):
            batch.append(entry(chunks, chunk))
            chunks += 1
            if len(batch) >= per_item:
                yield batch
                batch = []
    except _Stop:
        pass
    except GradesetError as exc:  # e.g. no readable record: raised by the driver after the rejects
        error = exc
    if batch:
        yield batch
    yield {"read": read[0], "rejects": rejects, "chunks": chunks, "error": error}


# -- the prefix (map steps per chunk, in actors) ---------------------------------------

class PrefixStage:
    """A Ray actor running consecutive map steps on whole chunks, as the in-process runner
    does (one call per chunk, so a step that numbers within a batch numbers the same); a
    call carries a batch of consecutive chunks (:func:`run_entries`)."""

    def __init__(self, specs: list[tuple[int, str, dict]]):
        self.indices = [i for i, _, _ in specs]
        self.steps = steps_list(specs)

    def run(self, k0: int, entries: list, finish: tuple | None = None) -> tuple[Any, list[dict]]:
        return run_entries(self.steps, self.indices, k0, entries, finish)


def run_entries(steps: list[Any], indices: list[int], k0: int, entries: list,
                finish: tuple | None) -> tuple[Any, list[dict]]:
    """The map steps ``indices`` on each ``"run"`` chunk of a batch (chunk ``k0 + j``), and,
    in the last stage (``finish``), each chunk finished (:func:`finish_rows`).

    Returns (entries for the next stage, or for the last stage the batch's numbered rows as
    one block, or None when shards were written) and one report per chunk: ``counts`` per
    step, ``status`` for a chunk not run, what finishing added, or ``{ERROR: message}``;
    chunks after an error are not run (the driver raises at the first, in chunk order)."""
    from gradeset.run.accounting import apply_map_steps

    out: list[tuple[str, Any]] = []
    metas: list[dict] = []
    failed = False
    for j, (status, table) in enumerate(entries):
        k = k0 + j
        meta: dict = {} if status == "run" else {"status": status}
        if failed or status == "error":
            failed = True
            out.append(("error", None))
            metas.append({"status": "error"})
            continue
        if status == "run":
            try:
                rows, meta["counts"] = apply_map_steps(steps, indices, _decode(table), k) if indices \
                    else (_decode(table), {})
            except Exception as exc:  # noqa: BLE001 - reported by the driver in chunk order
                failed = True
                out.append(("error", None))
                metas.append({ERROR: str(exc)})
                continue
            if finish is None:
                table = _encode(rows)
            else:
                table, extra = finish_rows(k, rows, finish)
                meta.update(extra)
        elif status == "cached" and finish is not None:
            meta["n"] = table.num_rows
        out.append((status, table))
        metas.append(meta)
    if finish is None:
        return out, metas
    if finish[0] == "write":
        return None, metas
    blocks = [t for s, t in out if s in ("run", "cached") and t is not None]
    return concat_blocks(*blocks) if blocks else _encode([]), metas


def entries_task(k0: int, entries: list, finish: tuple) -> tuple[Any, list[dict]]:
    """A batch finished with no prefix step (a plain task instead of an actor)."""
    return run_entries([], [], k0, entries, finish)


# -- finishing a chunk (its shard, or its checkpoint) -----------------------------------

def finish_rows(k: int, rows: Rows, finish: tuple) -> tuple[Any, dict]:
    """``("write", folder, format)``: shard ``k`` written here: ``(None, {"report"})``.
    ``("checkpoint", folder)``: the rows saved (resume never redoes them), numbered and
    counted (so the driver knows the first whole-stream step's input without a pass):
    ``(numbered table, {"report", "n"})``. ``("number",)``: numbered and counted only."""
    from gradeset.distributed.write import write_shard_file

    if finish[0] == "write":
        return None, {"report": write_shard_file(without_ord(rows), finish[1], k, finish[2])}
    if finish[0] == "number":  # nothing to checkpoint: the rows are the source's
        return _encode(with_ord(k, rows)), {"n": len(rows)}
    report = write_shard_file(rows, finish[1], k, "jsonl")
    return _encode(with_ord(k, rows)), {"report": report, "n": len(rows)}


def load_checkpoint(k: int, path: str):
    """A chunk's saved prefix output (from an earlier run), numbered."""
    from gradeset.io.readers import read_jsonl

    return _encode(with_ord(k, [r for _, r in read_jsonl(path)]))


def read_shard(k: int, path: str):
    """A finished shard's rows (JSON Lines or Parquet), numbered as chunk ``k``: a worker
    reads the output back for ``outputs.check`` so the rows never reach the driver."""
    from gradeset.io.readers import iter_rows

    return _encode(with_ord(k, [r for _, r in iter_rows(path)]))


def concat_blocks(*tables):
    """Consecutive chunk tables as one block, so every later per-block task of the
    whole-stream steps is one of a few, not one per chunk."""
    import pyarrow as pa

    if not tables:
        return _encode([])
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


# -- steps per chunk after the prefix (middle map steps, the tail) ---------------------

def run_per_chunk(specs: list[tuple[int, str, dict]]):
    """A ``group_reduce`` body: the map steps ``specs`` on one chunk's rows (in ORD order),
    rows renumbered after; an error becomes one row ``{ERROR: message, ORD: ...}``."""
    indices = [i for i, _, _ in specs]

    def run(rows: Rows) -> Rows:
        from gradeset.run.accounting import apply_map_steps

        k = chunk_of(rows[0])
        try:
            out, _ = apply_map_steps(steps_list(specs), indices, without_ord(rows), k)
        except Exception as exc:  # noqa: BLE001 - reported by the driver
            return [{ERROR: str(exc), ORD: k << POSITION_BITS}]
        return with_ord(k, out)
    return run


def tail_and_write(specs: list[tuple[int, str, dict]], folder: str, fmt: str, done: frozenset[int]):
    """A ``group_reduce`` body: the tail steps on one chunk, then its shard written here;
    returns one small report row (chunk, shard report, counts, or the error)."""
    indices = [i for i, _, _ in specs]

    def run(rows: Rows) -> Rows:
        from gradeset.distributed.write import write_shard_file
        from gradeset.run.accounting import apply_map_steps

        k = chunk_of(rows[0])
        if k in done:  # finished on an earlier run: its shard stays as it is
            return [{"chunk": k, "skipped": True}]
        try:
            out, counts = apply_map_steps(steps_list(specs), indices, without_ord(rows), k)
        except Exception as exc:  # noqa: BLE001 - reported by the driver
            return [{"chunk": k, "error": str(exc)}]
        return [{"chunk": k, "counts": counts, "report": write_shard_file(out, folder, k, fmt)}]
    return run


# -- a whole-stream step without a partitioned program: one task, all rows -------------

def stream_step_task(i: int, name: str, params: dict, chunks: int, *tables) -> tuple[Any, dict]:
    """A whole-stream step (e.g. a user plugin with ``process``) over every row in one
    worker, fed chunk by chunk in the in-process order, so its output (and which chunk
    each output row belongs to) is what the in-process engine gets. Returns the output
    table and ``{"stats", "report" (a check step's report), "in", "out", "rows", "error"}``."""
    from gradeset.run.accounting import _numeric, step_error
    from gradeset.steps import build_step

    rows = sorted((r for t in tables for r in _decode(t)), key=lambda r: r[ORD])
    step = build_step(name, params)  # fresh: a whole-stream step's state is this run's
    with contextlib.suppress(AttributeError, TypeError):
        step._gradeset_name = name
    current = [0]

    def batches() -> Iterator[Rows]:
        j = 0
        while j < len(rows):
            k = chunk_of(rows[j])
            e = j
            while e < len(rows) and chunk_of(rows[e]) == k:
                e += 1
            current[0] = k
            yield without_ord(rows[j:e])
            j = e
        current[0] = max(current[0], chunks - 1)

    out: dict[int, Rows] = {}
    try:
        for batch in step.process(batches()):
            out.setdefault(current[0], []).extend(batch)
    except Exception as exc:  # noqa: BLE001 - reported by the driver
        return _encode([]), {"error": str(step_error(i, step, exc))}
    from gradeset.run.accounting import row_totals

    numbered = [r for k in sorted(out) for r in with_ord(k, out[k])]
    report = step.report() if name == "check" and callable(getattr(step, "report", None)) else None
    return _encode(numbered), {"stats": _numeric(getattr(step, "stats", None)), "report": report, "in": len(rows),
                               "out": len(numbered), "rows": row_totals(numbered)}


def count_rows(rows: Rows) -> tuple[int, dict]:
    """A block's (rows, response totals): the partial behind a step's in/out counts."""
    from gradeset.run.accounting import row_totals

    return len(rows), row_totals(rows)


def add_counts(a: tuple[int, dict], b: tuple[int, dict]) -> tuple[int, dict]:
    from gradeset.run.accounting import add_numbers

    return a[0] + b[0], add_numbers(dict(a[1]), b[1])
