"""Atomic file and folder writes: a temp name beside the target, then a rename.

A reader (or a resumed run) therefore sees either the old file or the whole new one,
never half a shard, even after ``kill -9`` or a full disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def temp_path(target: str | os.PathLike) -> Path:
    """A unique hidden sibling of target, on the same filesystem so rename is atomic."""
    target = Path(target)
    clean_stale_siblings(target)  # every writer starts here, so no killed run's temp file outlives the next
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def commit(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Flush tmp to disk and move it over target in one step."""
    tmp, target = Path(tmp), Path(target)
    if tmp.is_file():
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    if target.is_dir() and tmp.is_dir():
        old = temp_path(target)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def discard(tmp: str | os.PathLike) -> None:
    """Remove an unfinished temp file or folder."""
    tmp = Path(tmp)
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_siblings(target: str | os.PathLike) -> int:
    """Remove temp files of target left by killed runs (their writer process is gone).

    A ``kill -9`` skips the cleanup in :func:`atomic_open`, so ``.NAME.tmp-PID-xxxx`` files
    would pile up beside outputs; a live writer's temp file is left alone."""
    target = Path(target)
    n = 0
    with contextlib.suppress(OSError):
        for p in target.parent.glob(f".{target.name}.tmp-*"):
            pid = p.name[len(target.name) + 6:].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                discard(p)
                n += 1
    return n


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temp file for writing; it replaces target only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    fh = open(tmp, mode)  # noqa: SIM115 - closed in the finally below, then renamed
    try:
        yield fh
        fh.close()
        commit(tmp, target)
    except BaseException:
        fh.close()
        discard(tmp)
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_open(target, "wb") as fh:
        fh.write(data)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Checksum recorded in manifests, to detect inputs changed under a run."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def clean_stale_temps(folder: str | os.PathLike) -> int:
    """Delete temp files a killed run left behind; returns how many."""
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(".") and ".tmp-" in p.name:
            discard(p)
            n += 1
    return n
