"""How deep a row's values nest, measured without recursion, and the limit every reader keeps.

Why a limit: orjson reads JSON up to 1024 levels but writes at most 254, and Python code
that walks values recursively (validation, shaping, Arrow type checks, ``==`` on nested
lists) dies with ``RecursionError`` long before 1024. A row nested deeper than
:data:`MAX_DEPTH` is therefore rejected where it is read, with its line number and a
reason, so no later step ever sees it. The limit leaves room for layouts that wrap values
a few levels deeper (messages, responses) and stays far below every recursion limit; it is
also below where pyarrow stops reading back the Arrow schema it stores in a Parquet file
(about 125 levels), so every row we accept survives a trip through Parquet.
"""

from __future__ import annotations

MAX_DEPTH = 100


def nesting_depth(value: object, limit: int | None = None) -> int:
    """Levels of dicts/lists/tuples in value (a scalar is 0, ``{}`` is 1), walked with a stack.

    With limit, stops as soon as some branch is deeper than limit and returns limit + 1, so
    a hostile row costs no more than its first limit + 1 levels of one branch.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > deepest:
            deepest = depth
            if limit is not None and deepest > limit:
                return limit + 1
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest


# Parquet spends two schema levels on each list (and one on each struct): a row we accept
# needs up to about 2 * MAX_DEPTH, where pyarrow's reader stops at 100 by default.
PARQUET_SCHEMA_DEPTH = 2 * MAX_DEPTH + 16


def open_parquet(path):
    """pyarrow's ParquetFile, allowed the schema depth of any row we accept (so our own files read back)."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, schema_depth_limit=PARQUET_SCHEMA_DEPTH)
    except TypeError:  # pyarrow without the option: its default limit applies
        return pq.ParquetFile(path)


def too_deep(row: object, limit: int = MAX_DEPTH) -> str | None:
    """The reject reason for a row nested deeper than limit, else None."""
    if nesting_depth(row, limit) > limit:
        return too_deep_reason(limit)
    return None


def too_deep_reason(limit: int = MAX_DEPTH) -> str:
    """The one wording for such rows, so reject files and summaries group them together."""
    return f"nested more than {limit} levels deep (lists/objects inside each other); flatten it"
