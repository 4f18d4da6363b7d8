"""The request cache: every finished sample, appended to a JSONL file as soon as it exists.

Resume works by key, not by position: a sample's key hashes (group id, sample index,
model, sampling parameters, base URL), so a re-run with the same command skips exactly
the samples already paid for, and a run with different parameters does not reuse them.

Each sample is one ``os.write`` of one line on an ``O_APPEND`` descriptor, which reaches
the kernel immediately: a ``kill -9`` loses nothing that finished (only requests in
flight). ``fsync`` runs every ``fsync_every`` seconds so a power cut loses at most that.
A torn last line (machine crash mid-write) is skipped on load.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import orjson


def sample_key(group_id: str, sample_index: int, fingerprint: str) -> str:
    raw = f"{group_id}\x1f{sample_index}\x1f{fingerprint}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class RequestCache:
    """Append-only map key -> response; the last record of a key wins (a retried failure)."""

    def __init__(self, path: str | os.PathLike | None, fsync_every: float = 1.0):
        self.path = Path(path) if path is not None else None
        self.fsync_every = fsync_every
        self.entries: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        self._fd: int | None = None
        self._last_sync = time.monotonic()
        self._dirty = False
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                    self.entries[rec["key"]] = rec["response"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    self.torn_lines += 1

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def done(self, key: str) -> bool:
        """True when the key holds a successful sample (failures are retried on re-run)."""
        r = self.entries.get(key)
        return r is not None and not r.get("failed")

    def put(self, key: str, group_id: str, sample_index: int, response: dict) -> None:
        self.entries[key] = response
        if self.path is None:
            return
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            # A torn tail from a crash would glue onto our first line; start on a fresh one.
            if self.path.stat().st_size:
                with open(self.path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        os.write(self._fd, b"\n")
        line = orjson.dumps({"key": key, "id": group_id, "i": sample_index, "response": response}) + b"\n"
        os.write(self._fd, line)
        self._dirty = True
        if time.monotonic() - self._last_sync >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_cache_path(out: str | os.PathLike) -> Path:
    """Where ``gradeset generate`` keeps its cache: beside OUT, so re-running resumes."""
    p = Path(out)
    return p.with_name(p.name + ".gencache.jsonl")
