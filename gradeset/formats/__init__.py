"""Layouts: detect, import to groups, export from groups (DESIGN.md's table).

Each layout lives in its own module and registers itself in ``registry``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from gradeset.errors import GradesetError
from gradeset.formats._util import stringify_answers
from gradeset.formats.registry import (
    LAYOUTS,
    ImportContext,
    Layout,
    detect_layout,
    get_layout,
    readable_layouts,
    register,
    writable_layouts,
)
from gradeset.io.readers import RejectFn, input_files, iter_rows, peek_rows

__all__ = [
    "LAYOUTS", "ImportContext", "Layout", "detect_layout", "export_groups", "get_layout", "import_rows",
    "read_groups", "readable_layouts", "register", "writable_layouts",
]


def import_rows(rows: Iterable[tuple[int, dict]], layout: str, ctx: ImportContext) -> Iterator[dict]:
    """Rows of a layout -> canonical groups (with ids); bad rows go to ctx.reject."""
    lay = get_layout(layout)
    if lay.to_groups is None:
        from gradeset.errors import GradesetError

        raise GradesetError(f"layout {layout!r} can be written but not read")
    return lay.to_groups(rows, ctx)


def export_groups(groups: Iterable[dict], layout: str, **opts) -> Iterator[dict]:
    """Canonical groups -> rows of a layout, with ``answer`` / ``solution`` always text.

    One place for every layout: a file mixing int answers (synthetic) with string ones
    (loaded) must still be one Arrow column for Parquet, datasets 4 and LLaMA-Factory.
    """
    lay = get_layout(layout)
    if lay.from_groups is None:
        from gradeset.errors import GradesetError

        raise GradesetError(f"layout {layout!r} can be read but not written")
    return (stringify_answers(row) for row in lay.from_groups(groups, **opts))


def read_groups(path: str | os.PathLike, *, layout: str | None = None, on_reject: RejectFn | None = None,
                split: str | None = None, ctx: ImportContext | None = None, **options) -> Iterator[dict]:
    """Groups from any file or folder: file format from the path, layout detected from the fields.

    A folder of several files is read file by file, and a bad row is reported with
    the file it is in (row numbers restart in each file). Files of different layouts
    in one folder are an error unless ``layout`` is given: mixing them silently would
    turn every row of the minority layout into a reject.

    Pass ``ctx`` to read the notes the importer leaves (e.g. how prompts were derived).
    """
    src = str(path)
    files = input_files(path) if Path(path).is_dir() else [Path(path)]
    if ctx is None:
        ctx = ImportContext(source=src, on_reject=on_reject, options=options)
    else:
        ctx.source, ctx.on_reject = src, on_reject if on_reject is not None else ctx.on_reject
        ctx.options.update(options)
    if layout is None:
        try:
            layout = _detect_files(path, files, split)
        except _NoRecords:
            _log_bad_lines(path, files, split, ctx)
            raise
    ctx.options.setdefault("_path", src)
    ctx.options.setdefault("_split", split)
    ctx.options.setdefault("layout", layout)
    if len(files) == 1 and files[0] == Path(path):
        return import_rows(iter_rows(path, ctx.on_reject, split=split), layout, ctx)
    return import_rows(_rows_of_files(files, ctx), layout, ctx)


def _rows_of_files(files: list[Path], ctx: ImportContext) -> Iterator[tuple[int, dict]]:
    """Rows of each file in turn; ctx.source names the file being read, for reject messages."""
    for f in files:
        ctx.source = str(f)
        yield from iter_rows(f, ctx.on_reject)


class _NoRecords(GradesetError):
    """No line of the input parses: there is nothing to detect a layout from."""


def _log_bad_lines(path, files: list[Path], split: str | None, ctx: ImportContext) -> None:
    """Send every bad line to the reject file before giving up, so none disappears."""
    if ctx.on_reject is None:
        return
    if len(files) <= 1:
        for _ in iter_rows(path, ctx.on_reject, split=split):
            pass
        return
    for f in files:
        for _ in iter_rows(f, ctx.on_reject):
            pass


def _detect_files(path, files: list[Path], split: str | None) -> str:
    if len(files) <= 1:
        sample = peek_rows(path, 64, split=split)
        if not sample:
            raise _NoRecords(f"{path}: no readable record to detect a layout from (empty, or every line is bad: "
                             "see the reject file)")
        return detect_layout(sample, str(path))
    found: dict[str, str] = {}
    for f in files:
        sample = peek_rows(f, 64)
        if sample:
            found[str(f)] = detect_layout(sample, str(f))
    if not found:
        raise _NoRecords(f"{path}: no readable record in any of its {len(files)} files (empty, or every line is "
                         "bad: see the reject file)")
    kinds = sorted(set(found.values()))
    if len(kinds) > 1:
        first = {k: next(f for f, lay in found.items() if lay == k) for k in kinds}
        detail = "; ".join(f"{f}:1 is {k}" for k, f in first.items())
        raise GradesetError(f"{path}: the folder mixes layouts ({detail}). Convert each file on its own, or "
                            "pass --layout to read every file as one layout (rows that do not fit are rejected "
                            "with their file and line)")
    return kinds[0]
