"""The :class:`~gradeset.distributed.executor.Executor` primitives on Ray Data, so a
partitioned whole-stream step runs on a cluster without any row passing through the driver.

Rows are free-form, mixed-type dicts that no fixed Arrow schema holds, so a dataset here is
a Ray Data dataset of one binary column (each row's orjson bytes), the same encoding the
Ray runner's map stages use. Batches are ``pyarrow`` tables (pandas batches leak memory and
mangle nested fields).

* ``map_batches``: one Ray task per block, decoding, calling ``fn``, encoding.
* ``group_reduce``: each row gets a partition number (:func:`partition_of` of its key, stable
  across processes), Ray Data groups by that number (a hash shuffle between workers), and
  ``num_partitions`` is the executor's (Ray's default of 200 reduce tasks costs seconds
  on small data); inside a partition rows are grouped by key and sorted by ORD (then arrival) before ``fn``.
* ``aggregate``: each block's ``partial`` is computed on a worker and travels back pickled;
  only those small values reach the driver, which merges them.
* ``broadcast``: ``ray.put``; ``resolve``: ``ray.get`` (cached per worker process).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from gradeset.distributed.executor import Rows, partition_of, reduce_by_key, split_blocks

A = TypeVar("A")
DATA, PART, PARTIAL = "_json", "_part", "_partial"


def _decode(table) -> Rows:
    return [orjson.loads(b) for b in table.column(DATA).to_pylist()] if table.num_rows else []


def _encode(rows: Rows):
    import pyarrow as pa

    from gradeset.io.writers import dumps

    return pa.table({DATA: pa.array([dumps(r) for r in rows], pa.binary())})


class RayDataset:
    """A Ray Data dataset of encoded rows (RayExecutor's dataset)."""

    def __init__(self, ds):
        self.ds = ds


def _map_block(fn: Callable[[Rows], Rows]):
    def run(table):
        return _encode(fn(_decode(table)))
    return run


def _tag_partition(key: Callable[[dict], str | bytes], partitions: int):
    def run(table):
        import pyarrow as pa

        parts = [partition_of(key(r), partitions) for r in _decode(table)]
        return table.select([DATA]).append_column(PART, pa.array(parts, pa.int64()))
    return run


def _reduce_partition(key: Callable[[dict], str | bytes], fn: Callable[[Rows], Rows]):
    def run(table):
        return _encode(reduce_by_key(_decode(table), key, fn))
    return run


def _partial_block(partial: Callable[[Rows], Any]):
    def run(table):
        import pyarrow as pa

        return pa.table({PARTIAL: pa.array([pickle.dumps(partial(_decode(table)))], pa.binary())})
    return run


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
        import ray.data

        tables = [_encode(b) for b in split_blocks(rows, blocks or self.partitions)]
        return RayDataset(ray.data.from_arrow(tables))

    def rows(self, ds: RayDataset) -> Rows:
        """All rows on the driver (tests only)."""
        return [r for t in ds.ds.iter_batches(batch_format="pyarrow", batch_size=None) for r in _decode(t)]

    # Executor protocol --------------------------------------------------------
    def map_batches(self, ds: RayDataset, fn: Callable[[Rows], Rows]) -> RayDataset:
        return RayDataset(ds.ds.map_batches(_map_block(fn), batch_format="pyarrow", batch_size=None,
                                            zero_copy_batch=True))

    def group_reduce(self, ds: RayDataset, key: Callable[[dict], str | bytes],
                     fn: Callable[[Rows], Rows]) -> RayDataset:
        tagged = ds.ds.map_batches(_tag_partition(key, self.partitions), batch_format="pyarrow",
                                   batch_size=None, zero_copy_batch=True)
        reduced = tagged.groupby(PART, num_partitions=self.partitions).map_groups(_reduce_partition(key, fn), batch_format="pyarrow")
        return RayDataset(reduced)

    def aggregate(self, ds: RayDataset, partial: Callable[[Rows], A], merge: Callable[[A, A], A], empty: A) -> A:
        parts = ds.ds.map_batches(_partial_block(partial), batch_format="pyarrow", batch_size=None,
                                  zero_copy_batch=True)
        acc = empty
        for t in parts.iter_batches(batch_format="pyarrow", batch_size=None):
            for b in t.column(PARTIAL).to_pylist():
                acc = merge(acc, pickle.loads(b))  # noqa: S301 - our own workers' partials, not row data
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
