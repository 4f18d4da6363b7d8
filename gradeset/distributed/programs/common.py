"""Small picklable pieces every partitioned program uses (field names, counting, keys).

Programs add private fields to rows while they work (``_k`` for a shuffle key, ...);
each is stripped before a row leaves the program, so outputs equal the in-process step's.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from gradeset.distributed.executor import ORD, Executor, Rows

KEY = "_k"  # shuffle key a program computes once in a map (hashing again in the reduce would cost twice)


def ord_of(row: dict) -> int:
    return int(row.get(ORD, 0))


def field_key(name: str, row: dict) -> str:
    """``group_reduce`` key reading one field (picklable through ``functools.partial``)."""
    return row[name]


def key_on(name: str = KEY):
    return partial(field_key, name)


def strip_fields(names: tuple[str, ...], rows: Rows) -> Rows:
    return [{k: v for k, v in r.items() if k not in names} for r in rows]


def count_rows(rows: Rows) -> int:
    return len(rows)


def add(a: int, b: int) -> int:
    return a + b


def count(ex: Executor, ds: Any) -> int:
    return ex.aggregate(ds, count_rows, add, 0)


def sum_field(name: str, rows: Rows) -> int:
    return sum(int(r.get(name, 0)) for r in rows)


def union_sets(a: frozenset, b: frozenset) -> frozenset:
    return a | b


def nonzero(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Stats as ``bump`` leaves them: a key exists once something was counted."""
    return {k: v for k, v in pairs if v}
