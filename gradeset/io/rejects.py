"""The reject file: every input line a command skipped, with its line number and reason.

Bad input never disappears: the raw line is kept (base64 too when it is not valid
UTF-8) so that a user can fix it and feed it back.
"""

from __future__ import annotations

import base64
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from gradeset.io.atomic import commit, discard, temp_path


@dataclass(frozen=True)
class Reject:
    source: str
    line: int | None
    reason: str
    raw: bytes | str | None = None

    def to_json(self) -> dict:
        out: dict = {"source": self.source, "line": self.line, "reason": self.reason}
        raw = self.raw
        if isinstance(raw, bytes):
            try:
                out["raw"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                out["raw"] = raw.decode("utf-8", errors="backslashreplace")
                out["raw_base64"] = base64.b64encode(raw).decode("ascii")
        elif raw is not None:
            out["raw"] = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
        return out

    def message(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


def rejects_path_for(out: str | os.PathLike) -> Path:
    """``OUT.rejects.jsonl`` beside the output (inside it when OUT is a folder)."""
    out = Path(out)
    name = out.name.rstrip("/")
    return out.with_name(f"{name}.rejects.jsonl")


class RejectLog:
    """Collects rejects, echoes the first few to stderr, writes the file on close.

    The file only appears when something was rejected; a stale one from an earlier
    run of the same command is removed so it cannot be mistaken for this run's.
    """

    def __init__(
        self,
        path: str | os.PathLike | None,
        *,
        strict: bool = False,
        echo: int = 5,
        stream: IO[str] | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.strict = strict
        self.echo = echo
        self.stream = stream if stream is not None else sys.stderr
        self.count = 0
        self._tmp: Path | None = None
        self._fh = None
        self.reasons: dict[str, int] = {}

    def add(self, reject: Reject) -> None:
        from gradeset.errors import InputError

        self.count += 1
        key = reject.reason.split(":")[0][:80]
        self.reasons[key] = self.reasons.get(key, 0) + 1
        if self.path is not None:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = temp_path(self.path)
                self._fh = open(self._tmp, "wb")  # noqa: SIM115 - lives until close()
            self._fh.write(orjson.dumps(reject.to_json()) + b"\n")
        if self.count <= self.echo:
            print(f"rejected {reject.message()}", file=self.stream)
        elif self.count == self.echo + 1:
            print("rejected more lines; see the reject file", file=self.stream)
        if self.strict:
            self.close()
            raise InputError(reject.source, reject.reason + " (--strict stops at the first bad line)", reject.line)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            assert self._tmp is not None and self.path is not None
            commit(self._tmp, self.path)
        elif self.path is not None and self.count == 0 and self.path.exists():
            self.path.unlink()

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            if self._tmp is not None:
                discard(self._tmp)

    def __enter__(self) -> RejectLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
