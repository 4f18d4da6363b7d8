"""Layouts: detect, import to groups, export from groups (DESIGN.md's table).

Each layout lives in its own module and registers itself in ``registry``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

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
from gradeset.io.readers import RejectFn, iter_rows, peek_rows

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
    """Canonical groups -> rows of a layout."""
    lay = get_layout(layout)
    if lay.from_groups is None:
        from gradeset.errors import GradesetError

        raise GradesetError(f"layout {layout!r} can be read but not written")
    return lay.from_groups(groups, **opts)


def read_groups(path: str | os.PathLike, *, layout: str | None = None, on_reject: RejectFn | None = None,
                split: str | None = None, ctx: ImportContext | None = None, **options) -> Iterator[dict]:
    """Groups from any file: file format from the path, layout detected from the fields.

    Pass ``ctx`` to read the notes the importer leaves (e.g. how prompts were derived).
    """
    src = str(path)
    if layout is None:
        sample = peek_rows(path, 64, split=split)
        layout = detect_layout(sample, src)
    if ctx is None:
        ctx = ImportContext(source=src, on_reject=on_reject, options=options)
    else:
        ctx.source, ctx.on_reject = src, on_reject if on_reject is not None else ctx.on_reject
        ctx.options.update(options)
    return import_rows(iter_rows(path, ctx.on_reject, split=split), layout, ctx)
