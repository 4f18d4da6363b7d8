"""Shard folders: ``shard-00000.jsonl|parquet`` plus ``manifest.json``.

The manifest records counts, schema, the run's parameters, each shard's checksum and
the inputs' checksums. That is what makes resume safe: a shard listed in the manifest
with a matching checksum is finished and is never written again, and an input whose
checksum changed under a run is detected instead of silently mixing two datasets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from gradeset.errors import GradesetError, InputError
from gradeset.io.atomic import clean_stale_temps, sha256_file, write_bytes_atomic
from gradeset.io.writers import Transaction

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "gradeset-shards/1"
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".parquet", ".csv", ".tsv")


def shard_name(index: int, shard_format: str) -> str:
    return f"shard-{index:05d}.{shard_format}"


def read_manifest(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(str(path), f"corrupt manifest: {exc}") from exc


def list_shards(folder: str | os.PathLike) -> list[Path]:
    """Shard files in order: from the manifest when present, else by name."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("shards"):
        return [folder / s["name"] for s in sorted(manifest["shards"], key=lambda s: s["index"])]
    shards = sorted(p for p in folder.glob("shard-*") if p.suffix in (".jsonl", ".parquet")
                    and not p.name.startswith("."))
    if not shards:
        # a plain folder of data files (e.g. part-0.jsonl, part-1.parquet): read them all, by name
        shards = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                        and p.name.lower().endswith(DATA_SUFFIXES) and ".rejects." not in p.name)
    return shards


def input_fingerprint(path: str | os.PathLike) -> dict:
    """Checksum of an input file or folder (every file in it), recorded in the manifest."""
    p = Path(path)
    if p.is_dir():
        parts = []
        total = 0
        for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
            parts.append(f"{f.relative_to(p)}:{sha256_file(f)}")
            total += f.stat().st_size
        import hashlib

        return {"path": str(p), "sha256": hashlib.sha256("\n".join(parts).encode()).hexdigest(),
                "bytes": total}
    return {"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def schema_of(rows: Iterable[dict]) -> dict[str, str]:
    """A light field -> JSON type map, for humans and for drift checks."""
    out: dict[str, str] = {}
    for r in rows:
        for k, v in r.items():
            t = _json_type(v)
            if k not in out or out[k] == "null":
                out[k] = t
            elif t not in ("null", out[k]) and "|" not in out[k]:
                out[k] = f"{out[k]}|{t}"
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


class ShardWriter(Transaction):
    """Write shards atomically and keep the manifest current after each one.

    ``write(rows)`` fills shards of ``rows_per_shard`` in order. Runners that map input
    chunks to shards deterministically use ``write_shard(index, rows)`` and
    ``finished()`` to skip what a killed run already wrote.
    """

    def __init__(self, folder: str | os.PathLike, shard_format: str = "jsonl",
                 rows_per_shard: int = 100_000, parameters: dict | None = None,
                 inputs: list[str] | None = None, resume: bool = False,
                 fingerprint: Callable[[str], dict] = input_fingerprint):
        if shard_format not in ("jsonl", "parquet"):
            raise GradesetError(f"shard format must be jsonl or parquet, not {shard_format!r}")
        self.path = Path(folder)
        self.folder = self.path
        self.shard_format = shard_format
        self.rows_per_shard = rows_per_shard
        self.parameters = parameters or {}
        self.folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.folder)
        existing = read_manifest(self.folder) if resume else None
        # ``fingerprint`` lets a runner checksum the inputs elsewhere (the Ray runner: on a worker)
        self.inputs = [fingerprint(p) for p in (inputs or [])]
        if existing is not None:
            self._check_resumable(existing)
            self.shards = {s["index"]: s for s in existing.get("shards", [])}
            self.schema = existing.get("schema", {})
        else:
            for old in self.folder.glob("shard-*"):
                old.unlink()
            self.shards = {}
            self.schema = {}
        self._pending: list[dict] = []
        self._next_index = max(self.shards, default=-1) + 1
        self.closed = False
        self._save_manifest(complete=False)

    def _check_resumable(self, existing: dict) -> None:
        if existing.get("shard_format") != self.shard_format:
            raise GradesetError(f"{self.folder}: existing shards are {existing.get('shard_format')}, "
                                f"not {self.shard_format}; use another output folder")
        if existing.get("parameters", {}) != self.parameters:
            raise GradesetError(f"{self.folder}: it holds a run with other parameters; resume needs the "
                                "same pipeline (or write to a new folder)")
        old_inputs = {i["path"]: i["sha256"] for i in existing.get("inputs", [])}
        for inp in self.inputs:
            if inp["path"] in old_inputs and old_inputs[inp["path"]] != inp["sha256"]:
                raise GradesetError(f"input {inp['path']} changed since this run started (checksum "
                                    "differs from the manifest); start a new output folder")

    @property
    def count(self) -> int:
        return sum(s["rows"] for s in self.shards.values())

    def finished(self) -> set[int]:
        """Indices of shards that are complete on disk (checksum verified)."""
        done = set()
        for idx, meta in self.shards.items():
            f = self.folder / meta["name"]
            if f.exists() and sha256_file(f) == meta["sha256"]:
                done.add(idx)
        return done

    def write(self, rows: Iterable[dict]) -> None:
        self._pending.extend(rows)
        while len(self._pending) >= self.rows_per_shard:
            chunk = self._pending[: self.rows_per_shard]
            self._pending = self._pending[self.rows_per_shard:]
            self.write_shard(self._next_index, chunk)

    def write_shard(self, index: int, rows: list[dict]) -> None:
        from gradeset.io.writers import JsonlWriter, ParquetWriter

        name = shard_name(index, self.shard_format)
        target = self.folder / name
        writer = ParquetWriter(target) if self.shard_format == "parquet" else JsonlWriter(target)
        with writer:
            writer.write(rows)
        for k, t in schema_of(rows).items():
            if k not in self.schema or self.schema[k] == "null":
                self.schema[k] = t
        self.shards[index] = {"index": index, "name": name, "rows": len(rows),
                              "sha256": sha256_file(target), "bytes": target.stat().st_size}
        self._next_index = max(self._next_index, index + 1)
        self._save_manifest(complete=False)

    def add_written(self, report: dict, *, save: bool = True) -> None:
        """Record a shard another process wrote into this folder (a Ray worker), from its
        report (index, name, rows, sha256, bytes, schema) alone: the rows never come here.
        ``save=False`` defers the manifest to :meth:`save_progress` (a driver recording many
        shards saves once per interval, not once per shard)."""
        for k, t in (report.get("schema") or {}).items():
            if k not in self.schema or self.schema[k] == "null":
                self.schema[k] = t
        index = int(report["index"])
        self.shards[index] = {"index": index, "name": report["name"], "rows": report["rows"],
                              "sha256": report["sha256"], "bytes": report["bytes"]}
        self._next_index = max(self._next_index, index + 1)
        if save:
            self._save_manifest(complete=False)

    def save_progress(self) -> None:
        """The manifest as it stands (not complete): finished shards survive a crash."""
        self._save_manifest(complete=False)

    def _save_manifest(self, complete: bool) -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "shard_format": self.shard_format,
            "complete": complete,
            "rows": self.count,
            "shards": [self.shards[i] for i in sorted(self.shards)],
            "schema": self.schema,
            "parameters": self.parameters,
            "inputs": self.inputs,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        from gradeset.io.preflight import CURRENT_COMMAND

        if CURRENT_COMMAND.get():  # so another command does not overwrite these shards silently
            manifest["written_by"] = CURRENT_COMMAND.get()
        write_bytes_atomic(self.folder / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))

    def close(self) -> None:
        if self.closed:
            return
        if self._pending:
            self.write_shard(self._next_index, self._pending)
            self._pending = []
        self._save_manifest(complete=True)
        self.closed = True

    def abort(self) -> None:
        """Keep finished shards (they are resumable); drop only the unfinished buffer."""
        self._pending = []
        self.closed = True



def verify_inputs(manifest: dict) -> list[str]:
    """Inputs whose checksum no longer matches the manifest (changed during or after a run)."""
    changed = []
    for inp in manifest.get("inputs", []):
        p = Path(inp["path"])
        if not p.exists() or input_fingerprint(p)["sha256"] != inp["sha256"]:
            changed.append(inp["path"])
    return changed
