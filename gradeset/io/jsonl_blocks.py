"""JSON Lines read a block of lines at a time, parsed by Arrow when that is safe.

Why: parsing line by line with orjson, building dicts and serialising them again for
Arrow costs several times what pyarrow's own multithreaded JSON parser does on the
same bytes. But ``pyarrow.json`` accepts what gradeset rejects (``NaN``, a BOM, two
objects on one line, a ``null`` line) and crashes the process on some hostile input
(a bare ``null`` line, nesting thousands deep). So a block goes to Arrow only after
cheap screens show that every line holds one plain object which orjson would read the
same way; any other block is returned as ``None`` and its lines are parsed one by one,
exactly as :func:`gradeset.io.readers.read_jsonl` does, so rejects keep their file,
line and reason. Memory stays bounded by one block (``max_lines`` lines).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Deeper rows (orjson reads up to 1024 levels) are left to the row-by-row path: group rows
# are about 4 deep, and the type walks below recurse once per level.
MAX_DEPTH = 64
# pyarrow.json overflows its stack (segfault) on nesting somewhere between 10k and 20k deep
# instead of raising. A line's depth is at most its length, so only lines longer than this
# are counted, and those with more openers go the orjson way.
MAX_OPENERS = 4096


@dataclass(frozen=True)
class Block:
    """Whole lines of a file: ``data`` ends with a newline except perhaps at the file's end."""

    first_line: int  # 1-based line number of the first line in data
    data: bytes
    lines: int


def iter_blocks(path: str | os.PathLike, max_lines: int = 4096, chunk_bytes: int = 1 << 22,
                max_bytes: int = 1 << 26) -> Iterator[Block]:
    """The file as blocks of up to max_lines lines, split exactly where file iteration splits (at ``\\n``).

    4096 lines is the batch the Parquet writer writes as one row group, so a block
    parsed by Arrow becomes the same row group that the row-by-row path writes. A block
    also ends before max_bytes where a line ends there, so memory stays bounded when rows
    are huge (one line longer than that is still read whole, as file iteration would).
    Newlines are found with ``find`` as the bytes arrive, each byte looked at once.
    """
    from gradeset.io.readers import _open_binary

    with _open_binary(Path(path)) as fh:
        buf = bytearray()
        lineno = 1
        eof = False
        while True:
            lines = pos = 0
            tail = False
            while lines < max_lines:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if eof:
                        tail = len(buf) > pos  # the last line, without a newline
                        break
                    if lines and len(buf) >= max_bytes:
                        break
                    more = fh.read(chunk_bytes)
                    if more:
                        buf += more
                    else:
                        eof = True
                    continue
                if lines and nl >= max_bytes:
                    break
                pos = nl + 1
                lines += 1
            if tail:
                pos = len(buf)
                lines += 1
            if not lines:
                return
            with memoryview(buf) as view:
                data = view[:pos].tobytes()
            del buf[:pos]
            yield Block(lineno, data, lines)
            lineno += lines


def block_lines(block: Block) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line with its newline)``: what iterating the file would give."""
    data = block.data
    start = 0
    lineno = block.first_line
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end + 1
        yield lineno, data[start:end]
        lineno += 1
        start = end


def _screen(data: bytes) -> tuple[int, int] | None:
    """``(objects, longest line)`` when every non-blank line is ``{...}`` and not deeply nested, else None."""
    if not data.isascii():
        try:
            data.decode("utf-8")  # orjson rejects invalid UTF-8; Arrow would only fail later, lazily
        except UnicodeDecodeError:
            return None
    objects = longest = 0
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        last = end - 1
        if last >= start and data[last] == 13:  # CRLF
            last -= 1
        if not (last > start and data[start] == 123 and data[last] == 125):
            line = data[start:end].strip()
            if not line:
                start = end + 1
                continue  # blank: skipped by both readers
            if line[:1] != b"{" or line[-1:] != b"}":
                return None
        if end - start > MAX_OPENERS and data.count(b"{", start, end) + data.count(b"[", start, end) > MAX_OPENERS:
            return None
        objects += 1
        if end - start > longest:
            longest = end - start
        start = end + 1
    return (objects, longest) if objects else None


def block_table(block: Block):
    """The block as an Arrow table (one row per line), or None when it must be read line by line.

    None whenever Arrow might read a line differently from ``parse_jsonl_line``: a line
    that is not one ``{...}`` object, invalid UTF-8, a parse error of any kind (duplicate
    keys, a field whose type changes between rows, lone surrogates), a row count that
    differs from the line count, or a non-finite number (``NaN``/``Infinity`` literals,
    which orjson refuses). ISO-date strings stay strings, as in the writer.
    """
    import pyarrow as pa
    import pyarrow.json as pj

    from gradeset.io.writers import _has_timestamp, _no_timestamps

    screened = _screen(block.data)
    if screened is None:
        return None
    objects, longest = screened
    opts = pj.ReadOptions(block_size=max(1 << 20, 2 * longest + 2))
    try:
        table = pj.read_json(pa.BufferReader(block.data), read_options=opts)
        if _depth(pa.struct(list(table.schema))) > MAX_DEPTH:
            return None
        if _has_timestamp(table.schema):
            schema = pa.schema([f.with_type(_no_timestamps(f.type)) for f in table.schema])
            table = pj.read_json(pa.BufferReader(block.data), read_options=opts,
                                 parse_options=pj.ParseOptions(explicit_schema=schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != objects:
        return None
    if not all(_finite(col) for col in table.columns):
        return None
    return table


def _depth(t) -> int:
    """JSON nesting depth a type stands for: a struct (object) or list (array) is one level."""
    import pyarrow as pa

    deepest = 0
    stack = [(t, 0)]  # a loop, not recursion: the depth may exceed Python's recursion limit
    while stack:
        t, d = stack.pop()
        if pa.types.is_struct(t):
            stack.extend((t.field(i).type, d + 1) for i in range(t.num_fields))
            deepest = max(deepest, d + 1)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            stack.append((t.value_type, d + 1))
            deepest = max(deepest, d + 1)
    return deepest


def _finite(array) -> bool:
    """No NaN or infinity anywhere in array (nested lists and structs included), walked with a stack."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stack = [array]
    while stack:
        a = stack.pop()
        if isinstance(a, pa.ChunkedArray):
            stack.extend(a.chunks)
            continue
        t = a.type
        if pa.types.is_floating(t):
            if len(a) != a.null_count and pc.all(pc.is_finite(a)).as_py() is False:
                return False
        elif pa.types.is_struct(t):
            stack.extend(a.flatten())
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            stack.append(a.flatten())
    return True


def first_keys(data: bytes) -> list[str] | None:
    """The keys of the first object in data, in their order; None if the first line is not one."""
    import orjson

    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        if line.strip():
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            return list(obj) if isinstance(obj, dict) else None
        start = end + 1
    return None
