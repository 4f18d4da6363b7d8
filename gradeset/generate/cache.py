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
    """Append-only map key -> response; the last record of a key wins (a retried failure).

    Memory stays small on huge resumes: for records already on disk only the key and the
    record's place in the file are kept (one int), and the response is read back when the
    output is assembled. Responses written in this session are held until ``release``.
    """

    def __init__(self, path: str | os.PathLike | None, fsync_every: float = 1.0):
        self.path = Path(path) if path is not None else None
        self.fsync_every = fsync_every
        self._index: dict[str, int] = {}  # key -> offset << 32 | length << 1 | failed
        self._fresh: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        self._fd: int | None = None
        self._rfd: int | None = None
        self._last_sync = time.monotonic()
        self._dirty = False
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        offset = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                here, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                # Fast path: our own records start with the key. '"failed":true' cannot occur
                # unescaped inside a JSON string, so it marks a failed sample.
                if line.startswith(b'{"key":"') and line.endswith(b"}\n") and line[32:34] == b'",':
                    key = line[8:32].decode("ascii")
                    failed = b'"failed":true' in line
                else:
                    try:
                        rec = orjson.loads(line)
                        key = rec["key"]
                        failed = bool(rec["response"].get("failed"))
                    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                        self.torn_lines += 1
                        continue
                self._index[key] = here << 32 | len(line) << 1 | int(failed)

    def __len__(self) -> int:
        return len(self._index.keys() | self._fresh.keys())

    def __contains__(self, key: str) -> bool:
        return key in self._fresh or key in self._index

    def get(self, key: str) -> dict | None:
        r = self._fresh.get(key)
        if r is not None:
            return r
        packed = self._index.get(key)
        if packed is None or self.path is None:
            return None
        if self._rfd is None:
            self._rfd = os.open(self.path, os.O_RDONLY)
        raw = os.pread(self._rfd, (packed >> 1) & 0x7FFFFFFF, packed >> 32)
        try:
            return orjson.loads(raw)["response"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None

    def done(self, key: str) -> bool:
        """True when the key holds a successful sample (failures are retried on re-run)."""
        r = self._fresh.get(key)
        if r is not None:
            return not r.get("failed")
        packed = self._index.get(key)
        return packed is not None and not packed & 1

    def release(self, key: str) -> None:
        """Drop a response from memory once it is in the output (it stays on disk)."""
        if self.path is not None and key in self._index:
            self._fresh.pop(key, None)

    def put(self, key: str, group_id: str, sample_index: int, response: dict) -> None:
        self._fresh[key] = response
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
        # With O_APPEND the descriptor's position is the end of this write, even when other
        # processes (Ray workers) append to the same file.
        end = os.lseek(self._fd, 0, os.SEEK_CUR)
        self._index[key] = (end - len(line)) << 32 | len(line) << 1 | int(bool(response.get("failed")))
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
        if self._rfd is not None:
            os.close(self._rfd)
            self._rfd = None

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_cache_path(out: str | os.PathLike) -> Path:
    """Where ``gradeset generate`` keeps its cache: beside OUT, so re-running resumes."""
    p = Path(out)
    return p.with_name(p.name + ".gencache.jsonl")
