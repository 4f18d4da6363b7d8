"""Streaming readers: every format yields ``(location, row)`` one row at a time.

Memory stays flat however large the file: JSONL is read line by line, Parquet and
Arrow by record batch, CSV by row. ``location`` is the 1-based line number for text
files and the 1-based row number for columnar files, so reject messages can say
exactly where a bad row is.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from gradeset.errors import InputError
from gradeset.io.nesting import open_parquet, too_deep, too_deep_reason
from gradeset.io.rejects import Reject

RejectFn = Callable[[Reject], None]
Row = tuple[int, dict]

csv.field_size_limit(1 << 30)


def detect_format(path: str | os.PathLike) -> str:
    """The file format of path: jsonl, json-array, parquet, csv, hf, shards."""
    p = Path(path)
    if p.is_dir():
        if (p / "state.json").exists() or (p / "dataset_dict.json").exists():
            return "hf"
        if (p / "manifest.json").exists() or any(p.glob("shard-*")):
            return "shards"
        from gradeset.io.shards import list_shards

        if list_shards(p):
            return "shards"
        raise InputError(str(p), "folder holds no data files (shard-*.jsonl|parquet, *.jsonl, *.parquet, "
                         "*.csv) and is not a Hugging Face save_to_disk folder (state.json)")
    if not p.exists():
        raise InputError(str(p), "no such file")
    name = p.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".tsv"):
        return "csv"
    if name.endswith(".arrow"):
        return "arrow"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        with open(p, "rb") as fh:
            head = fh.read(4096).lstrip()
        if head.startswith(b"["):
            return "json-array"
        if head.split(b"\n", 1)[0].strip() == b"{":
            return "json-stream"  # pretty-printed objects one after another, as documentation shows them
        return "jsonl"
    return "jsonl"


def _reject(on_reject: RejectFn | None, source: str, line: int, reason: str, raw) -> None:
    if on_reject is not None:
        on_reject(Reject(source, line, reason, raw))


def _open_binary(p: Path):
    if p.name.endswith(".gz"):
        return gzip.open(p, "rb")
    return open(p, "rb")


def parse_jsonl_line(raw: bytes) -> tuple[dict | None, str | None]:
    """One JSON Lines line -> ``(object, None)``, ``(None, None)`` for a blank line, or
    ``(None, reason)`` for a rejected one; shared by the streaming and the range readers so
    both reject exactly the same lines."""
    line = raw.strip()
    if not line:
        return None, None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
            reason = f"invalid JSON: {exc}"
        except UnicodeDecodeError as uexc:
            reason = f"invalid UTF-8 at byte {uexc.start}"
        if not raw.endswith(b"\n"):
            reason += " (last line has no newline: truncated file?)"
        return None, reason
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    deep = too_deep(obj)
    if deep is not None:
        return None, deep
    return obj, None


def parse_jsonl_lines(lines: Iterable[tuple[int, bytes]], source: str,
                      on_reject: RejectFn | None = None) -> Iterator[Row]:
    """``(line number, raw line)`` -> ``(line number, object)``; bad lines go to on_reject.

    The one row-by-row JSONL path: the streaming reader and convert's block reader (for
    blocks Arrow may not parse) both use it, so they reject the same lines the same way.
    """
    for lineno, raw in lines:
        obj, reason = parse_jsonl_line(raw)
        if reason is not None:
            _reject(on_reject, source, lineno, reason, raw.rstrip(b"\r\n"))
        elif obj is not None:
            yield lineno, obj


def read_jsonl(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    """JSON Lines; bad lines (truncated JSON, invalid UTF-8, non-objects) are rejected."""
    p = Path(path)
    with _open_binary(p) as fh:
        yield from parse_jsonl_lines(enumerate(fh, 1), str(p), on_reject)


def read_json_array(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    """A file holding one JSON array of objects (loaded whole: such files are small)."""
    p = Path(path)
    try:
        data = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(str(p), f"invalid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InputError(str(p), "expected a JSON array of objects or JSON Lines")
    for i, obj in enumerate(data, 1):
        if not isinstance(obj, dict):
            _reject(on_reject, str(p), i, f"array item {i}: expected an object, got {type(obj).__name__}",
                    _raw_json(obj))
            continue
        deep = too_deep(obj)
        if deep is not None:
            _reject(on_reject, str(p), i, f"array item {i}: {deep}", _raw_json(obj))
            continue
        yield i, obj


def _raw_json(obj) -> bytes:
    """obj as JSON for the reject file; a placeholder when orjson cannot write it (too deep)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return b'"<value nested too deep to write back; see the input file>"'


def read_json_stream(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    """Pretty-printed JSON objects one after another (what docs and notebooks show).

    Such files are small (hand-written examples), so they are read whole; an object
    that does not parse is rejected from its first line to the end of the file.
    """
    import json

    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _reject(on_reject, str(p), line, f"invalid UTF-8 at byte {exc.start}", raw)
        return
    dec = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        line = text.count("\n", 0, pos) + 1
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            _reject(on_reject, str(p), line, f"invalid JSON: {exc.msg} (line {exc.lineno})", text[pos:])
            return
        except RecursionError:  # the stdlib decoder recurses once per level
            _reject(on_reject, str(p), line, too_deep_reason(), text[pos:])
            return
        if isinstance(obj, dict):
            deep = too_deep(obj)
            if deep is not None:
                _reject(on_reject, str(p), line, deep, text[pos:end])
            else:
                yield line, obj
        else:
            _reject(on_reject, str(p), line, f"expected a JSON object, got {type(obj).__name__}",
                    text[pos:end])
        pos = end


def _arrow_rows(batches, src: str, on_reject: RejectFn | None = None) -> Iterator[Row]:
    n = 0
    for batch in batches:
        for row in batch.to_pylist():
            n += 1
            deep = too_deep(row)
            if deep is not None:
                _reject(on_reject, src, n, deep, None)
            else:
                yield n, row


def read_parquet(path: str | os.PathLike, on_reject: RejectFn | None = None,
                 batch_size: int = 4096) -> Iterator[Row]:

    p = Path(path)
    try:
        pf = open_parquet(p)
    except Exception as exc:
        raise InputError(str(p), f"not a readable Parquet file: {exc}") from exc
    yield from _arrow_rows(pf.iter_batches(batch_size=batch_size), str(p), on_reject)


def read_arrow_stream(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    """An Arrow IPC file as written by Hugging Face ``datasets`` (stream or file format)."""
    import pyarrow as pa

    p = Path(path)
    try:
        source = pa.memory_map(str(p), "r")
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
            yield from _arrow_rows((reader.get_batch(i) for i in range(reader.num_record_batches)), str(p),
                                    on_reject)
            return
    except Exception as exc:
        raise InputError(str(p), f"not a readable Arrow file: {exc}") from exc
    yield from _arrow_rows(reader, str(p), on_reject)


def _csv_cell(value: str):
    """CSV has no types: empty means null, and JSON objects/arrays written by us come back."""
    if value == "":
        return None
    if value[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def read_csv(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    p = Path(path)
    src = str(p)
    delimiter = "\t" if p.name.lower().endswith(".tsv") else ","
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(src, f"unreadable CSV header: {exc}", 1) from exc
        if any(_has_surrogates(h) for h in header):
            raise InputError(src, "header is not valid UTF-8", 1)
        width = len(header)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                _reject(on_reject, src, start, f"malformed CSV: {exc}", None)
                continue
            if not cells or all(c == "" for c in cells) and len(cells) <= 1:
                continue
            raw_line = delimiter.join(cells)
            if any(_has_surrogates(c) for c in cells):
                _reject(on_reject, src, start, "invalid UTF-8",
                        raw_line.encode("utf-8", errors="surrogateescape"))
                continue
            if len(cells) != width:
                _reject(on_reject, src, start, f"expected {width} columns, got {len(cells)}", raw_line)
                continue
            row = {h: _csv_cell(c) for h, c in zip(header, cells)}
            deep = too_deep(row)
            if deep is not None:
                _reject(on_reject, src, start, deep, raw_line)
                continue
            yield start, row


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def read_hf_disk(path: str | os.PathLike, on_reject: RejectFn | None = None,
                 split: str | None = None) -> Iterator[Row]:
    """A ``Dataset.save_to_disk`` folder, read straight from its Arrow files.

    Reading the Arrow files directly (instead of importing ``datasets``) keeps the
    core install light and streams by record batch.
    """
    p = Path(path)
    if (p / "dataset_dict.json").exists():
        splits = orjson.loads((p / "dataset_dict.json").read_bytes()).get("splits", [])
        if split is None:
            if len(splits) == 1:
                split = splits[0]
            elif "train" in splits:
                split = "train"
            else:
                raise InputError(str(p), f"a DatasetDict with splits {splits}: choose one with --split")
        if split not in splits:
            raise InputError(str(p), f"no split {split!r}; splits are {splits}")
        p = p / split
    state_file = p / "state.json"
    try:
        state = orjson.loads(state_file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(str(state_file), f"unreadable state.json: {exc}") from exc
    files = [f["filename"] for f in state.get("_data_files", [])]
    n = 0
    for name in files:
        for _, row in read_arrow_stream(p / name, on_reject):
            n += 1
            yield n, row


def read_shards(path: str | os.PathLike, on_reject: RejectFn | None = None) -> Iterator[Row]:
    """A shard folder: the shards in order (as the manifest lists them when there is one)."""
    from gradeset.io.shards import list_shards

    for shard in list_shards(path):
        yield from iter_rows(shard, on_reject)


def input_files(path: str | os.PathLike) -> list[Path]:
    """The data files behind an input: the file itself, or a folder's shards / data files in order.

    Lets callers name the file (not just the folder) when they report a bad row, since
    row locations restart in each file.
    """
    p = Path(path)
    if p.is_dir() and detect_format(p) == "shards":
        from gradeset.io.shards import list_shards

        return list_shards(p)
    return [p]


def iter_rows(path: str | os.PathLike, on_reject: RejectFn | None = None, *,
              fmt: str | None = None, split: str | None = None) -> Iterator[Row]:
    """Rows of any supported file or folder, streamed, with their locations."""
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return read_jsonl(path, on_reject)
    if fmt == "json-stream":
        return read_json_stream(path, on_reject)
    if fmt == "json-array":
        return read_json_array(path, on_reject)
    if fmt == "parquet":
        return read_parquet(path, on_reject)
    if fmt == "csv":
        return read_csv(path, on_reject)
    if fmt == "arrow":
        return read_arrow_stream(path, on_reject)
    if fmt == "hf":
        return read_hf_disk(path, on_reject, split=split)
    if fmt == "shards":
        return read_shards(path, on_reject)
    raise InputError(str(path), f"unknown format {fmt!r}")


def is_empty(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_file() and p.stat().st_size == 0


def peek_rows(path: str | os.PathLike, n: int = 64, **kw) -> list[dict]:
    """The first n good rows (bad ones skipped): what layout detection looks at."""
    out = []
    for _, row in iter_rows(path, None, **kw):
        out.append(row)
        if len(out) >= n:
            break
    return out


def text_stream(data: bytes) -> io.TextIOWrapper:  # pragma: no cover - small helper
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
