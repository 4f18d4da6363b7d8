"""Shard writing on the worker that produced the rows, so rows never travel to the driver.

A part is written under a temporary name and renamed to its final, deterministic name
(chosen by the caller from the task's partition index), so a retried task rewrites the
same file instead of adding one, and a reader never sees half a shard. The task returns a
small :func:`write_part` report (name, rows, bytes, sha256) from which the driver writes
the manifest without reading the shard.

Destinations are local paths or any URL ``pyarrow.fs.FileSystem.from_uri`` knows
(``s3://``, ``gs://``...). On object stores the final "rename" is a copy + delete, which
is still all-or-nothing for readers because the object appears whole.
"""

from __future__ import annotations

import hashlib
import uuid

from gradeset.io.writers import dumps


def _fs(dest: str):
    from pyarrow import fs

    if "://" in dest:
        return fs.FileSystem.from_uri(dest)
    import os

    return fs.LocalFileSystem(), os.path.abspath(dest)


def jsonl_bytes(rows: list[dict]) -> bytes:
    """The shard's bytes: one canonical JSON object per line, as the in-process writer emits."""
    return b"".join(dumps(r) + b"\n" for r in rows)


def write_part(rows: list[dict], dest: str, name: str) -> dict:
    """Write ``rows`` as ``dest/name`` atomically; returns the report the driver keeps."""
    filesystem, root = _fs(dest)
    filesystem.create_dir(root, recursive=True)
    data = jsonl_bytes(rows)
    final = f"{root.rstrip('/')}/{name}"
    tmp = f"{root.rstrip('/')}/.{name}.tmp-{uuid.uuid4().hex}"
    with filesystem.open_output_stream(tmp) as out:
        out.write(data)
    filesystem.move(tmp, final)
    return {"file": name, "rows": len(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def part_name(index: int, ext: str = "jsonl") -> str:
    """Deterministic per-task name: a retry of task ``index`` overwrites its own file."""
    return f"part-{index:05d}.{ext}"


def write_partitioned(ex, ds, dest: str, parts: int, key: str = "id") -> list[dict]:
    """Every row written by a worker into ``part-<p>.jsonl``, ``p`` the stable hash of its
    ``key`` field, rows in ORD order and ORD dropped; returns the parts' reports (the only
    thing that reaches the driver). The file set and each file's bytes depend only on the
    rows, never on how Ray split blocks, so a retried task or a re-run rewrites identical
    files: resume is exact."""
    from gradeset.distributed.executor import ORD, partition_of

    def part_of(row: dict) -> str:
        return str(partition_of(str(row.get(key)), parts))

    def write(group: list[dict]) -> list[dict]:
        p = int(part_of(group[0]))
        rows = [{k: v for k, v in r.items() if k != ORD} for r in group]
        return [{**write_part(rows, dest, part_name(p)), "part": p}]

    reports = ex.aggregate(ex.group_reduce(ds, part_of, write), lambda rs: list(rs),
                           lambda a, b: a + b, [])
    return sorted(reports, key=lambda r: r["part"])


def write_shard_file(rows: list[dict], folder: str, index: int, shard_format: str) -> dict:
    """Shard ``index`` of a run's output folder, written by the worker holding its rows with
    the writer the in-process runner uses (same bytes, temp file + rename), and the report
    the driver's manifest keeps: ``{"index", "name", "rows", "sha256", "bytes", "schema"}``."""
    from pathlib import Path

    from gradeset.io.atomic import sha256_file
    from gradeset.io.shards import schema_of, shard_name
    from gradeset.io.writers import JsonlWriter, ParquetWriter

    name = shard_name(index, shard_format)
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = ParquetWriter(target) if shard_format == "parquet" else JsonlWriter(target)
    with writer:
        writer.write(rows)
    return {"index": index, "name": name, "rows": len(rows), "sha256": sha256_file(target),
            "bytes": target.stat().st_size, "schema": schema_of(rows)}
