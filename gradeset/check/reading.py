"""Reading inputs for the checks: groups with their line numbers, test prompts, split files.

``Job.groups`` / ``read_groups`` give groups without the line they came from; the checks
must name lines, so this wraps the same registry functions and remembers the location of
the last row the importer consumed (exact for one-row-per-group layouts; for layouts that
merge rows into one group it is the row that completed the group).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gradeset.errors import GradesetError
from gradeset.io.readers import is_empty, iter_rows, peek_rows
from gradeset.io.rejects import Reject

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv", ".tsv", ".arrow")
PROMPT_FIELDS = ("prompt", "question", "problem", "input", "instruction", "query")


def _require_readable(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise GradesetError(f"{path}: no such file or folder")
    if is_empty(p):
        raise GradesetError(f"{path}: the file is empty")
    return p


def detect(path: str | os.PathLike, layout: str | None = None, split: str | None = None) -> str:
    from gradeset.formats import detect_layout, get_layout

    _require_readable(path)
    if layout is not None:
        return get_layout(layout).name
    return detect_layout(peek_rows(path, 64, split=split), str(path))


def groups_with_lines(path: str | os.PathLike, layout: str, on_reject: Callable[[Reject], None],
                      split: str | None = None, notes: list[str] | None = None
                      ) -> Iterator[tuple[str | None, int | None, dict]]:
    """``(file, line, group)`` for every group of path; bad rows go to on_reject.

    ``file`` is None for a single file and names the shard for a folder (line numbers
    restart in each shard). The context options mirror ``read_groups`` so that importers
    which re-read the input (seed003's two-pass grouping) work the same.
    """
    from gradeset.formats import ImportContext, import_rows
    from gradeset.io.readers import input_files

    ctx = ImportContext(source=str(path), on_reject=on_reject,
                        options={"_path": str(path), "_split": split, "layout": layout})
    files = input_files(path) if split is None and Path(path).is_dir() else [Path(path)]
    many = len(files) > 1 or Path(path).is_dir()
    last: list = [None, None]

    def rows():
        for f in files:
            if many:
                ctx.source = str(f)
            for loc, row in iter_rows(f if many else path, on_reject, split=split):
                last[0], last[1] = (str(f) if many else None), loc
                yield loc, row

    try:
        for g in import_rows(rows(), layout, ctx):
            yield last[0], last[1], g
    finally:
        if notes is not None:
            notes.extend(n for n in ctx.notes if n not in notes)


def test_prompts(path: str | os.PathLike) -> list[str]:
    """Prompt texts of a test file in any layout (or any row with a question-like field)."""
    from gradeset.formats import read_groups
    from gradeset.records import prompt_text

    _require_readable(path)
    try:
        return [prompt_text(g.get("prompt")) for g in read_groups(path)]
    except GradesetError:
        out = []
        for _, row in iter_rows(path):
            field = next((f for f in PROMPT_FIELDS if f in row), None)
            if field is not None:
                out.append(prompt_text(row[field]))
        if not out:
            raise GradesetError(f"{path}: no prompts found (fields tried: {', '.join(PROMPT_FIELDS)})") from None
        return out


test_prompts.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _is_one_dataset(folder: Path) -> bool:
    """A shard or Hugging Face folder is one split; any other folder holds one split per file."""
    return any((folder / n).exists() for n in ("manifest.json", "state.json", "dataset_dict.json")) or any(
        folder.glob("shard-*"))


def split_files(paths: list[str], exclude: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(split name, path) for each split file; a plain folder contributes each data file in it."""
    skip = Path(exclude).resolve() if exclude is not None else None
    out: list[tuple[str, Path]] = []
    for raw in paths:
        p = _require_readable(raw)
        items: list[Path]
        if p.is_dir() and not _is_one_dataset(p):
            items = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(DATA_SUFFIXES)
                           and not f.name.endswith(".rejects.jsonl"))
            if not items:
                raise GradesetError(f"{p}: no data files for --splits")
        else:
            items = [p]
        for f in items:
            if skip is not None and f.resolve() == skip:
                continue
            out.append((str(f), f))
    return out
