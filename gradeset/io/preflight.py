"""Can this command write where it was told to? Answered before any work, in one line.

A read-only folder, an ``--out`` under a file, a ``--report`` that is a folder or a path
under ``/proc`` used to surface as a traceback after the work was done (or half done).
Each output flag is checked up front: the folder it goes in is created and a probe file
is written and removed there. An existing folder as a data output is refused unless it
is a gradeset shard folder written by the same command, so one command never silently
replaces another's shards.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
from pathlib import Path

from gradeset.errors import GradesetError

# The command now running ("verify", "generate" ...): shard manifests record it as
# ``written_by`` so that another command does not overwrite them silently.
CURRENT_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("gradeset_command", default=None)

# argparse destinations that name outputs, and what they must be.
#   data:   a data file, or a shard folder when the path has no extension
#   file:   a single file (reports, JSON, CSV)
#   folder: a folder the command fills with files of its own naming
FILE_DESTS = ("report", "json_path", "csv", "test_out", "removed", "save_groups", "json")
FOLDER_DESTS = ("out_dir", "out_hf")
FOLDER_OUT_COMMANDS = {"split", "train"}  # --out is a folder of files the command names
FILE_OR_FOLDER_COMMANDS = {"batch"}  # --out is a file, or a folder of one file per batch


class OutputError(GradesetError):
    """An output path that cannot be written: exit 2 before any work."""


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of path that is a file (so nothing can be created under it)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def probe_folder(folder: Path, flag: str, target: Path) -> None:
    """Create folder (as the command would) and write and remove a probe file in it."""
    blocker = blocking_file(folder / "x")
    if blocker is not None:
        raise OutputError(f"{flag} {target}: cannot create it: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".gradeset-write-probe-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.write(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{flag} {target}: cannot write in {folder}: {_reason(exc)}") from None


def check_file(path: Path, flag: str) -> None:
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name (for example {path / 'out.jsonl'})"
                          if flag in ("--out", "OUT") else f"{flag} {path}: is a folder; give a file name")
    probe_folder(path.parent if str(path.parent) else Path("."), flag, path)


def check_shard_folder(path: Path, flag: str, command: str | None) -> None:
    """A data output that is a folder: new, empty, or a shard folder this command wrote."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file; a path without an extension means a shard folder "
                          "(give a file name with .jsonl / .parquet, or a new folder)")
    if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        from gradeset.io.shards import read_manifest

        try:
            manifest = read_manifest(path)
        except GradesetError:
            manifest = None
        if manifest is None:
            raise OutputError(f"{flag} {path}: is an existing folder that is not a gradeset shard folder; "
                              f"writing shards there would mix them with its files. Give a file name "
                              f"inside it (for example {path / 'out.jsonl'}) or a new folder")
        writer = manifest.get("written_by")
        if writer and command and writer != command:
            raise OutputError(f"{flag} {path}: holds the output of 'gradeset {writer}'; writing 'gradeset "
                              f"{command}' output there would replace it. Choose another folder, or delete "
                              "it first")
    probe_folder(path, flag, path)


def check_outputs(args: object, command: str | None) -> None:
    """Check every output named on a parsed command line; raises OutputError on the first problem."""
    from gradeset.io.writers import output_format

    inputs = [getattr(args, "input", None)]
    inputs = [x for x in (inputs[0] if isinstance(inputs[0], list) else inputs) if isinstance(x, str)]
    for dest, flag in (("out", "--out"), ("output", "OUT")):
        value = getattr(args, dest, None)
        if not isinstance(value, str) or not value or value == "-":
            continue
        path = Path(value)
        for inp in inputs:
            with contextlib.suppress(OSError):
                if Path(inp).exists() and Path(inp).resolve() == path.resolve():
                    raise OutputError(f"{flag} {value}: the output would overwrite the input; choose another path")
        if command in FOLDER_OUT_COMMANDS:
            if path.exists() and not path.is_dir():
                raise OutputError(f"{flag} {value}: is a file; this command writes a folder")
            probe_folder(path, flag, path)
        elif output_format(path, getattr(args, "out_format", None)) in ("shards", "shards-jsonl", "shards-parquet"):
            if command in FILE_OR_FOLDER_COMMANDS:
                probe_folder(path, flag, path)
            else:
                check_shard_folder(path, flag, command)
        elif output_format(path, getattr(args, "out_format", None)) == "hf":
            probe_folder(path.parent if str(path.parent) else Path("."), flag, path)
        else:
            check_file(path, flag)
    for dest in FILE_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and value and value != "-":
            check_file(Path(value), "--" + dest.replace("json_path", "json").replace("_", "-"))
    for dest in FOLDER_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and value:
            path = Path(value)
            if path.exists() and not path.is_dir():
                raise OutputError(f"--{dest.replace('_', '-')} {value}: is a file, not a folder")
            probe_folder(path, "--" + dest.replace("_", "-"), path)


def os_error_message(exc: OSError) -> str:
    """One line for an OSError that escaped a command (the safety net under check_outputs)."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{_reason(exc)}"
