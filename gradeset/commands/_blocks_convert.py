"""``convert`` of a group-layout JSONL file to Parquet, a block of lines at a time.

The general path builds a dict per row, validates it, and serialises it again for
Arrow; for graded groups (16 responses each) that costs several times a plain
``pyarrow.json`` + ``write_table`` script. Here each block of lines is parsed by Arrow
and checked by column (:mod:`gradeset.io.jsonl_blocks`,
:mod:`gradeset.formats.group_table`). A block that either of them declines goes through the
general path's own functions, line by line, so the output, the reject file (file,
line, reason), the counts and the exit codes are those of the general path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError


def applies(src: str | os.PathLike, out: str | os.PathLike, out_format: str | None, to_layout: str,
            from_layout: str | None) -> bool:
    """True for a non-empty JSONL file read and written in the group layout, to a Parquet file.

    Anything unusual (no such file, another format or layout, no readable row to detect
    the layout from) answers False: the general path then reports it as it always has.
    """
    from gradeset.formats import detect_layout, get_layout
    from gradeset.io.readers import detect_format, peek_rows
    from gradeset.io.writers import output_format

    p = Path(src)
    try:
        if not p.is_file() or p.stat().st_size == 0 or detect_format(p) != "jsonl":
            return False
        if output_format(out, out_format) != "parquet" or get_layout(to_layout).name != "group":
            return False
        if from_layout is not None:
            return get_layout(from_layout).name == "group"
        sample = peek_rows(p, 64)
        return bool(sample) and detect_layout(sample, str(p)) == "group"
    except (GradesetError, OSError):
        return False


def convert_blocks(job, src: str | os.PathLike, out: str | os.PathLike, out_format: str | None,
                   from_layout: str | None, quiet: bool = False, name: str = "convert") -> int:
    """Convert src to out, counting in job; returns the rows written (one per group)."""
    from gradeset.formats import ImportContext
    from gradeset.formats.group_table import canonical_group_table
    from gradeset.io.jsonl_blocks import block_table, first_keys, iter_blocks
    from gradeset.io.writers import open_writer

    ctx = ImportContext(source=str(src), on_reject=job._on_reject,
                        options={"_path": str(src), "_split": None, "layout": "group"})
    bar = _bar(quiet, name)
    written = 0
    try:
        with open_writer(out, out_format) as w:
            for block in iter_blocks(src, max_lines=w.batch_rows):
                table = block_table(block)
                if table is not None:
                    table = canonical_group_table(table, first_keys(block.data))
                if table is None:
                    table, parsed = _around_bad_lines(block, ctx)
                if table is not None:
                    w.write_table(table)
                    n = table.num_rows
                else:
                    rows = list(_rows_one_by_one(parsed, ctx))
                    w.write(rows)
                    n = len(rows)
                job.read += n
                job.written += n
                written += n
                if bar is not None:
                    bar.update(n)
            if written == 0 and job.rejected:
                as_what = from_layout or "the detected layout"
                raise GradesetError(f"{src}: no row could be read as {as_what}; nothing written "
                                    f"(reasons in {job.rejects.path})")
    finally:
        if bar is not None:
            bar.close()
        for n in ctx.notes:
            job.note(n)
    return written


# (line number, raw line, object or None, reject reason or None) for each line of a block
Parsed = list[tuple[int, bytes, "dict | None", "str | None"]]


def _around_bad_lines(block, ctx) -> tuple[Any, Parsed]:
    """For a declined block: the Arrow table of its lines that orjson reads, when the only
    trouble was lines it rejects (those are then rejected, in line order), else None; and
    the block's lines as parsed, for the row path.

    One truncated or non-UTF-8 line then costs an orjson pass over its block instead of
    the row path for all of its rows.
    """
    from gradeset.formats.group_table import canonical_group_table
    from gradeset.io.jsonl_blocks import Block, block_lines, block_table, first_keys
    from gradeset.io.readers import parse_jsonl_line

    parsed: Parsed = [(lineno, raw, *parse_jsonl_line(raw)) for lineno, raw in block_lines(block)]
    if all(reason is None for *_, reason in parsed):
        return None, parsed  # no bad line: the rows themselves need the row path
    good = [raw if raw.endswith(b"\n") else raw + b"\n" for _, raw, obj, _ in parsed if obj is not None]
    data = b"".join(good)
    table = block_table(Block(block.first_line, data, len(good))) if good else None
    if table is not None:
        table = canonical_group_table(table, first_keys(data))
    if table is None:
        return None, parsed
    for lineno, raw, _, reason in parsed:
        if reason is not None:
            _reject_line(ctx, lineno, reason, raw)
    return table, parsed


def _rows_one_by_one(parsed: Parsed, ctx) -> Iterator[dict]:
    """The general path for a block: rejects in line order, import as groups, export as group rows."""
    from gradeset.formats import export_groups, import_rows

    return export_groups(import_rows(_replay(parsed, ctx), "group", ctx), "group")


def _replay(parsed: Parsed, ctx) -> Iterator[tuple[int, dict]]:
    """What ``parse_jsonl_lines`` yields and rejects for these lines, from the lines already parsed."""
    for lineno, raw, obj, reason in parsed:
        if reason is not None:
            _reject_line(ctx, lineno, reason, raw)
        elif obj is not None:
            yield lineno, obj


def _reject_line(ctx, lineno: int, reason: str, raw: bytes) -> None:
    """A line rejected as ``read_jsonl`` rejects it (the path spelt as it spells it)."""
    from gradeset.io.readers import _reject

    _reject(ctx.on_reject, str(Path(ctx.source)), lineno, reason, raw.rstrip(b"\r\n"))


def _bar(quiet: bool, name: str):
    if quiet or os.environ.get("GRADESET_NO_PROGRESS"):
        return None
    import sys

    from tqdm import tqdm

    return tqdm(desc=name, unit="group", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
