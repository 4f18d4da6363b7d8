"""What every command shares: input/output flags, reject files, counts, progress bars.

Commands are thin: parse flags, open a :class:`Job`, stream groups through library
functions, write. The job owns the reject file and the arithmetic of the summary,
``read = written + rejected + skipped``, so every command reports counts that add up.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError
from gradeset.io import RejectLog, rejects_path_for
from gradeset.io.readers import is_empty


def add_input(p: argparse.ArgumentParser, nargs: str | None = None) -> None:
    p.add_argument("input", nargs=nargs, help="input file or shard folder (JSONL, Parquet, CSV, HF folder)")
    p.add_argument("--layout", help="input layout (detected from the fields when omitted)")
    p.add_argument("--split", help="split of a Hugging Face DatasetDict folder")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line (exit 2)")


def add_output(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--out", "-o", required=required, help="output file or folder; format from the extension")
    p.add_argument("--format", dest="out_format",
                   help="output file format: jsonl, parquet, csv, hf, shards, shards-parquet")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def progress(items: Iterable, *, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, **kw) -> Iterable:
    """A tqdm bar on stderr; off when disabled or GRADESET_NO_PROGRESS is set."""
    if disable or os.environ.get("GRADESET_NO_PROGRESS"):
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, **kw)


class Job(AbstractContextManager):
    """One command's bookkeeping: reject file beside OUT, counts, the closing summary."""

    def __init__(self, out: str | os.PathLike | None, *, strict: bool = False, name: str = "",
                 rejects: str | os.PathLike | None = None, stream=None):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        path = rejects if rejects is not None else (rejects_path_for(out) if out is not None else None)
        self.rejects = RejectLog(path, strict=strict, stream=self.stream)
        self.read = 0
        self.written = 0
        self.skipped: dict[str, int] = {}
        self.notes: list[str] = []

    @property
    def rejected(self) -> int:
        return self.rejects.count

    def skip(self, reason: str, n: int = 1) -> None:
        """Count input left out on purpose (not an error): ties, duplicates, filters."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def groups(self, path: str | os.PathLike, layout: str | None = None, split: str | None = None,
               limit: int | None = None, **options: Any) -> Iterator[dict]:
        """Groups read from path, counted; bad lines go to the reject file.

        With ``limit`` reading stops after that many groups (the rest is not read, so the
        counts cover what was read)."""
        from gradeset.formats import ImportContext, read_groups

        p = Path(path)
        if not p.exists():
            raise GradesetError(f"{path}: no such file or folder")
        if is_empty(p):
            raise GradesetError(f"{path}: the file is empty")
        ctx = ImportContext(source=str(path), on_reject=self._on_reject, options=options)
        try:
            for g in read_groups(path, layout=layout, split=split, ctx=ctx):
                if limit is not None and self.read - self.rejected >= limit:
                    self.note(f"stopped reading {path} after --limit {limit} groups")
                    break
                self.read += 1
                yield g
        finally:
            for n in ctx.notes:
                self.note(n)

    def _on_reject(self, reject) -> None:
        self.read += 1
        self.rejects.add(reject)

    def summary(self) -> str:
        parts = [f"read {self.read}", f"written {self.written}", f"rejected {self.rejected}"]
        if self.skipped:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
            parts.append(f"skipped {sum(self.skipped.values())} ({detail})")
        line = ", ".join(parts)
        if self.rejected and self.rejects.path is not None:
            line += f"; rejects in {self.rejects.path}"
        return line

    def __exit__(self, exc_type, exc, tb) -> None:
        self.rejects.close()
        for n in self.notes:
            print(f"note: {n}", file=self.stream)
        if exc_type is None:
            label = f"{self.name}: " if self.name else ""
            print(label + self.summary(), file=self.stream)
        return None


def write_rows(job: Job, path: str | os.PathLike, rows: Iterable[dict], fmt: str | None = None,
               batch: int = 2048, **opts) -> int:
    """Write rows atomically, counting them as the job's written rows."""
    from gradeset.io import batched, open_writer

    with open_writer(path, fmt, **opts) as w:
        for chunk in batched(rows, batch):
            w.write(chunk)
            job.written += len(chunk)
    return w.count


def exit_code_for(exc: BaseException) -> int:
    return getattr(exc, "exit_code", 2)
