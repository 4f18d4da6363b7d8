"""The :class:`~gradeset.distributed.executor.Executor` primitives on Ray core tasks, so a
partitioned whole-stream step runs on a cluster without any row passing through the driver.

Rows are free-form, mixed-type dicts that no fixed Arrow schema holds, so a block is a
one-column Arrow table (each row's orjson bytes) in Ray's object store, the same encoding
the Ray runner's map stages use, and a dataset is a list of references to such blocks.

* ``map_batches``: one task per block, decoding, calling ``fn``, encoding.
* ``group_reduce``: the classic two-stage hash shuffle. A split task per block cuts it into
  ``partitions`` tables by :func:`partition_of` of each row's key (stable across processes);
  reduce task ``p`` receives piece ``p`` of every block (workers fetch them from each
  other), groups rows by key, sorts by ORD (then arrival) and calls ``fn``.
* ``aggregate``: each block's ``partial`` is computed on a worker; only those small values
  reach the driver, which merges them.
* ``broadcast``: ``ray.put``; ``resolve``: ``ray.get`` (cached per worker process).

Why Ray core and not Ray Data: Ray Data's streaming executor runs a scheduling loop in the
driver process that polls for as long as a job runs and does work per block and operator,
so the driver's CPU grew with the data (2.6x for 4x the rows, measured by
``benchmarks/pipeline_bench.py --ray-driver``). Here the driver submits a fixed number of
tasks per block and then blocks in ``ray.get``/``ray.wait``, which costs no CPU; the
step's functions travel once per operation (``ray.put``), not once per task. Tasks retry
on worker or node loss and lost blocks are rebuilt from lineage, as Ray Data's are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from gradeset.distributed.executor import Rows, partition_of, reduce_by_key, split_blocks

A = TypeVar("A")
DATA = "_json"


def _decode(table) -> Rows:
    return [orjson.loads(b) for b in table.column(DATA).to_pylist()] if table.num_rows else []


def _encode(rows: Rows):
    import pyarrow as pa

    from gradeset.io.writers import dumps

    return pa.table({DATA: pa.array([dumps(r) for r in rows], pa.binary())})


class RayDataset:
    """A dataset on the cluster: references to encoded blocks (RayExecutor's dataset)."""

    def __init__(self, refs: list[Any]):
        self.refs = list(refs)


# -- what the tasks run (plain functions of blocks) -----------------------------------

def _map_block(fn: Callable[[Rows], Rows], table):
    return _encode(fn(_decode(table)))


def _split_block(key: Callable[[dict], str | bytes], parts: int, table):
    """Block ``table`` cut into ``parts`` tables by the hash of each row's key."""
    import pyarrow as pa

    if parts == 1:
        return table
    data = table.column(DATA).to_pylist() if table.num_rows else []
    pieces: list[list[bytes]] = [[] for _ in range(parts)]
    for raw in data:
        pieces[partition_of(key(orjson.loads(raw)), parts)].append(raw)
    return tuple(pa.table({DATA: pa.array(piece, pa.binary())}) for piece in pieces)


def _reduce_part(key: Callable[[dict], str | bytes], fn: Callable[[Rows], Rows], *tables):
    """One partition: the matching piece of every block, in block order (arrival)."""
    return _encode(reduce_by_key([r for t in tables for r in _decode(t)], key, fn))


def _partial_block(partial: Callable[[Rows], Any], table) -> Any:
    return partial(_decode(table))


_REMOTE: dict[str, Any] = {}


def _remote(fn: Callable, **options: Any) -> Any:
    """``ray.remote(fn)`` made once per process (defining a remote function costs an export).
    Tasks are spread over the nodes (as Ray Data spreads its tasks): Ray's default packs
    short tasks onto the driver's node while it has a free CPU, leaving other nodes idle."""
    import ray

    name = fn.__name__
    if name not in _REMOTE:
        _REMOTE[name] = ray.remote(fn)
    return _REMOTE[name].options(scheduling_strategy="SPREAD", **options)


_RESOLVED: dict[Any, Any] = {}


class RayExecutor:
    """Executor on the current Ray session (``ray.init`` is the caller's business).

    ``partitions`` is how many hash partitions ``group_reduce`` spreads keys over; by
    default the cluster's CPU count, so every worker gets a share of each shuffle."""

    def __init__(self, partitions: int | None = None):
        import ray

        self.partitions = max(1, partitions or int(ray.cluster_resources().get("CPU", 1)))

    # test / runner edges --------------------------------------------------------
    def dataset(self, rows: Rows, blocks: int | None = None) -> RayDataset:
        """Rows from the driver (tests only: the runner reads sources on workers)."""
        import ray

        return RayDataset([ray.put(_encode(b)) for b in split_blocks(rows, blocks or self.partitions)])

    def rows(self, ds: RayDataset) -> Rows:
        """All rows on the driver (tests only)."""
        import ray

        return [r for t in ray.get(ds.refs) for r in _decode(t)]

    def materialize(self, ds: RayDataset) -> RayDataset:
        """Wait until every block exists (a failed task raises here, not later)."""
        import ray

        if ds.refs:
            ray.wait(ds.refs, num_returns=len(ds.refs), fetch_local=False)
        return ds

    # Executor protocol --------------------------------------------------------
    def map_batches(self, ds: RayDataset, fn: Callable[[Rows], Rows]) -> RayDataset:
        import ray

        task, f = _remote(_map_block), ray.put(fn)
        return RayDataset([task.remote(f, ref) for ref in ds.refs])

    def group_reduce(self, ds: RayDataset, key: Callable[[dict], str | bytes],
                     fn: Callable[[Rows], Rows]) -> RayDataset:
        import ray

        parts = self.partitions
        k, f = ray.put(key), ray.put(fn)
        split = _remote(_split_block, num_returns=parts)
        pieces = [split.remote(k, parts, ref) for ref in ds.refs]
        if parts == 1:
            pieces = [[p] for p in pieces]
        reduce = _remote(_reduce_part)
        return RayDataset([reduce.remote(k, f, *[block[p] for block in pieces]) for p in range(parts)])

    def aggregate(self, ds: RayDataset, partial: Callable[[Rows], A], merge: Callable[[A, A], A], empty: A) -> A:
        import ray

        task, f = _remote(_partial_block), ray.put(partial)
        pending = [task.remote(f, ref) for ref in ds.refs]
        acc = empty
        for i in range(0, len(pending), 256):  # the driver holds a bounded number of partials
            for value in ray.get(pending[i:i + 256]):
                acc = merge(acc, value)
        return acc

    def broadcast(self, value: Any) -> Any:
        import ray

        return ray.put(value)

    def resolve(self, handle: Any) -> Any:
        import ray

        key = handle.hex() if hasattr(handle, "hex") else id(handle)
        if key not in _RESOLVED:
            _RESOLVED[key] = ray.get(handle)
        return _RESOLVED[key]
