"""The few data-parallel primitives a whole-stream step needs, so one algorithm runs anywhere.

A whole-stream step (dedup, balance, sample, check) written against :class:`Executor`
runs unchanged in-process (:class:`LocalExecutor`, used by tests to prove the
partitioned algorithm equals the streaming one) and on a Ray cluster (the Ray executor
in ``gradeset.distributed.ray_exec``), where no row ever passes through the driver:
rows move between workers by hash partitioning, and only small values (counts,
statistics, id sets) come back to the driver through :meth:`Executor.aggregate`.

Rows carry :data:`ORD`, their position in the in-process runner's order (an int, set by
the runner before the first whole-stream step, removed before rows are written), so
"keep the first occurrence" and "in input order" have one meaning on every executor.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

ORD = "_ord"

A = TypeVar("A")
Rows = list[dict]


def partition_of(key: str | bytes, partitions: int) -> int:
    """Stable across processes and Python versions (``hash()`` is salted per process)."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % partitions


def split_blocks(rows: Rows, blocks: int) -> list[Rows]:
    """``rows`` cut into at most ``blocks`` contiguous blocks (one empty block for no rows)."""
    size = max(1, -(-len(rows) // max(1, blocks)))
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]


def reduce_by_key(rows: Rows, key: Callable[[dict], str | bytes], fn: Callable[[Rows], Rows]) -> Rows:
    """``fn`` on the rows of each key, sorted by :data:`ORD` (stable: arrival breaks ties);
    what every executor's ``group_reduce`` does inside one partition."""
    groups: dict[Any, Rows] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out: Rows = []
    for group in groups.values():
        group.sort(key=lambda r: r.get(ORD, 0))
        out.extend(fn(group))
    return out


class Dataset(Protocol):
    """Opaque handle to a distributed collection of rows; only an executor looks inside."""


class Executor(Protocol):
    def map_batches(self, ds: Dataset, fn: Callable[[Rows], Rows]) -> Dataset:
        """``fn`` on each block of rows, independently; it may drop, change or add rows."""
        ...

    def group_reduce(self, ds: Dataset, key: Callable[[dict], str | bytes],
                     fn: Callable[[Rows], Rows]) -> Dataset:
        """All rows with one key meet in one ``fn`` call, sorted by :data:`ORD` (then by
        arrival for rows without it); rows of different keys never share a call."""
        ...

    def aggregate(self, ds: Dataset, partial: Callable[[Rows], A], merge: Callable[[A, A], A],
                  empty: A) -> A:
        """``merge`` over ``partial`` of every block, in no fixed order: both must make the
        result independent of how rows are split and merged (associative, commutative)."""
        ...

    def broadcast(self, value: Any) -> Any:
        """A value every later ``fn`` may read (e.g. an id set); returns the handle to pass."""
        ...

    def resolve(self, handle: Any) -> Any:
        """Inside a ``fn``: the value a :meth:`broadcast` handle stands for."""
        ...


class LocalDataset:
    """Rows held as a list of blocks (LocalExecutor's dataset)."""

    def __init__(self, blocks: list[Rows]):
        self.blocks = blocks

    def rows(self) -> Rows:
        return [r for b in self.blocks for r in b]


class LocalExecutor:
    """In-process executor that behaves like a cluster: rows are split into ``partitions``
    blocks and blocks are visited in a shuffled order (``seed``), so an algorithm that
    depends on arrival order or on which rows share a block fails its tests here first."""

    def __init__(self, partitions: int = 4, seed: int = 0):
        self.partitions = max(1, partitions)
        self.rng = random.Random(seed)

    def dataset(self, rows: Rows, blocks: int | None = None) -> LocalDataset:
        return LocalDataset(split_blocks(rows, blocks or self.partitions))

    def _shuffled(self, blocks: list[Rows]) -> list[Rows]:
        blocks = list(blocks)
        self.rng.shuffle(blocks)
        return blocks

    def map_batches(self, ds: LocalDataset, fn: Callable[[Rows], Rows]) -> LocalDataset:
        return LocalDataset([fn(list(b)) for b in self._shuffled(ds.blocks)])

    def group_reduce(self, ds: LocalDataset, key: Callable[[dict], str | bytes],
                     fn: Callable[[Rows], Rows]) -> LocalDataset:
        parts: list[Rows] = [[] for _ in range(self.partitions)]
        for block in self._shuffled(ds.blocks):
            for r in block:
                parts[partition_of(key(r), self.partitions)].append(r)
        return LocalDataset([reduce_by_key(part, key, fn) for part in parts])

    def aggregate(self, ds: LocalDataset, partial: Callable[[Rows], A], merge: Callable[[A, A], A], empty: A) -> A:
        acc = empty
        for b in self._shuffled(ds.blocks):
            acc = merge(acc, partial(list(b)))
        return acc

    def broadcast(self, value: Any) -> Any:
        return value

    def resolve(self, handle: Any) -> Any:
        return handle
