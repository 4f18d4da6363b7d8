"""Source reading on workers: a JSON Lines file split into line-aligned byte ranges, each
read by its own task, so no row passes through the driver on the way in.

A range's task cannot know its first line number without reading everything before it,
so it reports rejects with *local* line numbers and its own line count; the driver, which
holds only these small reports, turns them into the file's line numbers
(:func:`global_rejects`), so the reject file says exactly what the streaming reader says.
Rows get :data:`ORD` ``(range index << 32) | position``: sorting by it is file order.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradeset.distributed.executor import ORD
from gradeset.io.readers import _open_binary, parse_jsonl_line
from gradeset.io.rejects import Reject

POSITION_BITS = 32


def line_ranges(path: str | os.PathLike, parts: int) -> list[tuple[int, int]]:
    """``parts`` (or fewer) byte ranges covering the file, each starting at a line start.
    Compressed files are one range (their byte offsets are not line offsets)."""
    size = os.path.getsize(path)
    if str(path).endswith(".gz") or size == 0 or parts <= 1:
        return [(0, -1)]
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            pos = max(cuts[-1], size * k // parts)
            if pos <= cuts[-1] and k > 1:
                continue
            fh.seek(pos)
            if pos > 0:
                fh.seek(pos - 1)
                fh.readline()  # to the end of the line holding byte pos-1
            nxt = fh.tell()
            if cuts[-1] < nxt < size:
                cuts.append(nxt)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(0, -1)]


def read_range(path: str | os.PathLike, start: int, end: int, index: int) -> tuple[list[dict], list[Reject], int]:
    """Rows (with ORD), rejects (local line numbers) and the line count of one range."""
    rows: list[dict] = []
    rejects: list[Reject] = []
    lines = 0
    with _open_binary(Path(path)) as fh:
        if start:
            fh.seek(start)
        pos = start
        for raw in fh:
            if end >= 0 and pos >= end:
                break
            pos += len(raw)
            lines += 1
            obj, reason = parse_jsonl_line(raw)
            if reason is not None:
                rejects.append(Reject(str(path), lines, reason, raw.rstrip(b"\r\n")))
            elif obj is not None:
                obj[ORD] = (index << POSITION_BITS) | len(rows)
                rows.append(obj)
    return rows, rejects, lines


def global_rejects(per_range: list[tuple[list[Reject], int]]) -> list[Reject]:
    """Rejects of every range, in range order, with the file's line numbers."""
    out: list[Reject] = []
    before = 0
    for rejects, lines in per_range:
        out.extend(Reject(r.source, (r.line or 0) + before, r.reason, r.raw) for r in rejects)
        before += lines
    return out
