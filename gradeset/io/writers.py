"""Streaming, atomic writers for JSONL, Parquet, CSV and Hugging Face folders.

Every writer writes to a temp name and renames on ``close()``; ``abort()`` (or an
exception inside ``with``) leaves the previous file untouched.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from gradeset.errors import GradesetError
from gradeset.io.atomic import commit, discard, temp_path
from gradeset.io.nesting import open_parquet

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(row: dict) -> bytes:
    """row as one JSON line; a row nested beyond orjson's 254 levels is a GradesetError, not a traceback."""
    try:
        return orjson.dumps(row, option=_JSON_OPTS, default=_default)
    except orjson.JSONEncodeError as exc:
        if "Recursion limit" in str(exc):
            raise GradesetError("a row is nested too deeply to write as JSON (over 254 levels)") from None
        raise


def _default(obj):
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class Transaction:
    """``with`` commits on success (``close``) and rolls back on an exception (``abort``)."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Writer(Transaction):
    """Base: count rows, write to a temp path, commit on close."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self.count = 0
        self.closed = False

    def write(self, rows: Iterable[dict]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the temp file (subclasses)."""

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._finish()
        except BaseException:
            self.abort()  # a failed finish (last batch, merge) must not leave temp files behind
            raise
        commit(self.tmp, self.path)
        self.closed = True

    def abort(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(Exception):
            self._finish()
        discard(self.tmp)
        self.closed = True



class JsonlWriter(Writer):
    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        raw = open(self.tmp, "wb")  # noqa: SIM115 - lives until close()
        self._raw = raw
        self._fh = gzip.GzipFile(fileobj=raw, mode="wb") if self.path.name.endswith(".gz") else raw

    def write(self, rows: Iterable[dict]) -> None:
        buf = bytearray()
        n = 0
        for row in rows:
            buf += dumps(row)
            buf += b"\n"
            n += 1
        self._fh.write(buf)
        self.count += n

    def _finish(self) -> None:
        if self._fh is not self._raw:
            self._fh.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()


class _GrowingSchema:
    """Batches written under one Arrow schema that grows with the data.

    Each batch's schema is merged with the file's (``pyarrow.unify_schemas``, permissive: a
    field or nested key that first appears later, null columns that get a type, int
    widening to float). When the schema grows, a new part starts (``_start_part``); the
    writer merges its parts on finish. Shared by the Parquet and Arrow (HF folder) writers.
    """

    schema = None
    count = 0
    _kind = "Arrow"
    _pending: list[dict]
    _writer = None

    def _where(self) -> str:
        raise NotImplementedError

    def _start_part(self) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        rows, self._pending = self._pending, []
        rows = self._golds_as_text(rows)
        try:
            table = rows_to_arrow(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise GradesetError(f"{self._where()}: rows near {self.count + 1} cannot share one {self._kind} "
                                f"schema ({exc}); write JSONL instead") from exc
        self._write_arrow(table)

    def write_table(self, table) -> None:
        """Rows that are already an Arrow table (convert's block-parsed JSONL), after any rows
        still pending, so the order of the input is kept; the schema grows as for dict rows."""
        self._flush()
        if table.num_rows:
            self._write_arrow(table)

    def _write_arrow(self, table) -> None:
        import pyarrow as pa

        if self.schema is None:
            self.schema = table.schema
            self._start_part()
        elif table.schema != self.schema:
            before = self.schema
            self._widen_golds(table.schema)
            try:
                merged = pa.unify_schemas([self.schema, table.schema], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise GradesetError(f"{self._where()}: a row near {self.count + 1} does not fit the {self._kind} "
                                    f"schema of the earlier rows ({exc}); write JSONL instead") from exc
            if merged != before:
                self.schema = merged
                self._start_part()
            table = _conform(table, self.schema, self._where())
        self._writer.write_table(table)
        self.count += table.num_rows


    def _golds_as_text(self, rows: list[dict]) -> list[dict]:
        """Gold answers as text where the file mixes text and numbers (synthetic int answers next
        to loaded string ones): one column type, the same values. Other columns still must agree."""
        import pyarrow as pa

        for k in GOLD_FIELDS:
            nums = [isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows]
            if not any(nums):
                continue
            text_before = self.schema is not None and k in self.schema.names and pa.types.is_string(
                self.schema.field(k).type)
            if text_before or any(isinstance(r.get(k), str) for r in rows):
                rows = [{**r, k: str(r[k])} if n else r for r, n in zip(rows, nums, strict=True)]
        return rows

    def _widen_golds(self, incoming) -> None:
        """A gold column written as numbers so far becomes text when text arrives (the parts are cast)."""
        import pyarrow as pa

        for k in GOLD_FIELDS:
            if k in self.schema.names and k in incoming.names and pa.types.is_string(incoming.field(k).type):
                t = self.schema.field(k).type
                if pa.types.is_integer(t) or pa.types.is_floating(t):
                    self.schema = self.schema.set(self.schema.get_field_index(k), pa.field(k, pa.string()))


# Columns holding a gold answer: text wins when a file mixes text and numbers in them.
GOLD_FIELDS = ("answer", "solution")


class ParquetWriter(_GrowingSchema, Writer):
    """Parquet whose schema grows with the data, written in bounded memory.

    Parquet needs one schema per file. Each batch's schema is inferred and merged with
    the file's (``pyarrow.unify_schemas``, permissive: a field or a nested key that
    first appears later, null columns that get a type, int widening to float). Rows
    that fit are cast to the file schema (missing fields become null). When the schema
    has to grow, the rows so far are closed as a part and a new part starts; on close
    the parts are rewritten, batch by batch, into one file with the final schema. Only
    types that cannot be merged (a string where numbers were) stop with a clear error;
    nothing is dropped silently (``from_pylist(rows, schema=...)`` alone would drop
    nested keys it does not know).
    """

    _kind = "Parquet"

    def __init__(self, path: str | os.PathLike, batch_rows: int = 4096, compression: str = "zstd"):
        super().__init__(path)
        self.batch_rows = batch_rows
        self.compression = compression
        self._writer = None
        self.schema = None
        self._pending: list[dict] = []
        self._parts: list[Path] = []

    def write(self, rows: Iterable[dict]) -> None:
        self._pending.extend(rows)
        if len(self._pending) >= self.batch_rows:
            self._flush()

    def _where(self) -> str:
        return str(self.path)

    def _start_part(self) -> None:
        import pyarrow.parquet as pq

        if self._writer is not None:
            self._writer.close()
        part = temp_path(self.path)
        self._parts.append(part)
        self._writer = pq.ParquetWriter(part, self.schema, compression=self.compression)

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._flush()
        if self._writer is None:
            pq.write_table(pa.table({}), self.tmp)
            return
        self._writer.close()
        if len(self._parts) == 1:
            os.replace(self._parts[0], self.tmp)
            return
        with pq.ParquetWriter(self.tmp, self.schema, compression=self.compression) as out:
            for part in self._parts:
                for batch in open_parquet(part).iter_batches(batch_size=self.batch_rows):
                    out.write_table(_conform(pa.Table.from_batches([batch]), self.schema, self.path))
        for part in self._parts:
            discard(part)

    def abort(self) -> None:
        if self.closed:
            return
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        for part in self._parts:
            discard(part)
        discard(self.tmp)
        self.closed = True


def rows_to_arrow(rows: list[dict]):
    """Rows as an Arrow table, through Arrow's multithreaded JSON parser.

    ``Table.from_pylist`` walks every nested value in Python and dominated conversions of
    graded groups (16 responses each). Serialising with orjson and parsing with
    ``pyarrow.json`` is several times faster and types the same values the same way,
    except that the JSON parser would turn ISO-date strings into timestamps: those fields
    are read again as strings. Where the parser cannot type a batch (a field that is a
    number in one row and a string in another), ``from_pylist`` decides, as before.
    """
    import pyarrow as pa
    import pyarrow.json as pj

    lines = [dumps(r) for r in rows]
    buf = b"\n".join(lines)
    opts = pj.ReadOptions(block_size=max(1 << 20, 2 * max(map(len, lines), default=0) + 2))
    try:
        table = pj.read_json(pa.BufferReader(buf), read_options=opts)
        if len(table) != len(rows):
            raise pa.ArrowInvalid("row count differs")
        if _has_timestamp(table.schema):
            schema = pa.schema([f.with_type(_no_timestamps(f.type)) for f in table.schema])
            table = pj.read_json(pa.BufferReader(buf), read_options=opts,
                                 parse_options=pj.ParseOptions(explicit_schema=schema))
        return table
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.Table.from_pylist(rows)


def _type_children(t) -> list:
    import pyarrow as pa

    if pa.types.is_struct(t):
        return [t.field(i).type for i in range(t.num_fields)]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [t.value_type]
    return []


def _has_timestamp(schema_or_type) -> bool:
    """Any timestamp inside; walked with a stack because a row's types nest as deep as its values."""
    import pyarrow as pa

    if isinstance(schema_or_type, pa.Schema):
        stack = [f.type for f in schema_or_type]
    else:
        stack = [schema_or_type]
    while stack:
        t = stack.pop()
        if pa.types.is_timestamp(t):
            return True
        stack.extend(_type_children(t))
    return False


def _no_timestamps(t):
    """t with every timestamp turned back into a string; rebuilt bottom-up with a stack, not recursion."""
    import pyarrow as pa

    todo: list[tuple[object, bool]] = [(t, False)]
    built: list = []  # finished types, children before their parent, in field order
    while todo:
        node, expanded = todo.pop()
        children = _type_children(node)
        if children and not expanded:
            todo.append((node, True))
            todo.extend((c, False) for c in reversed(children))
            continue
        if not children:
            built.append(pa.string() if pa.types.is_timestamp(node) else node)
            continue
        done = built[-len(children):]
        del built[-len(children):]
        if pa.types.is_struct(node):
            built.append(pa.struct([node.field(i).with_type(done[i]) for i in range(node.num_fields)]))
        elif pa.types.is_list(node):
            built.append(pa.list_(node.value_field.with_type(done[0])))
        else:
            built.append(pa.large_list(node.value_field.with_type(done[0])))
    return built[0]


def _conform(table, schema, path):
    """table with schema's columns, in its order (absent ones null), cast to its types."""
    import pyarrow as pa

    cols = []
    for field in schema:
        if field.name in table.column_names:
            cols.append(table.column(field.name))
        else:
            cols.append(pa.nulls(table.num_rows, field.type))
    try:
        return pa.Table.from_arrays(cols, schema=pa.schema([pa.field(f.name, c.type) for f, c in zip(schema, cols)])
                                    ).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise GradesetError(f"{path}: rows do not fit one Parquet schema ({exc}); write JSONL instead") from exc


class CsvWriter(Writer):
    """CSV with the union of fields seen in the first batch; nested values as JSON text."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._fh = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - until close()
        self._writer = None
        self.fields: list[str] | None = None
        self.delimiter = "\t" if self.path.name.lower().endswith(".tsv") else ","

    def write(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self.fields is None:
            fields: dict[str, None] = {}
            for r in rows:
                fields.update(dict.fromkeys(r))
            self.fields = list(fields)
            self._writer = csv.writer(self._fh, delimiter=self.delimiter)
            self._writer.writerow(self.fields)
        known = set(self.fields)
        for i, r in enumerate(rows):
            extra = set(r) - known
            if extra:
                raise GradesetError(f"{self.path}: field(s) {sorted(extra)} first appear at row "
                                    f"{self.count + i + 1}; a CSV header is fixed by its first rows")
            self._writer.writerow([_csv_value(r.get(f)) for f in self.fields])
        self.count += len(rows)

    def _finish(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return dumps(v).decode("utf-8")


class HfDiskWriter(Writer):
    """A folder ``datasets.load_from_disk`` opens: one Arrow stream plus state.json.

    Written with pyarrow alone, so the core install needs no ``datasets``.
    """

    def __init__(self, path: str | os.PathLike, batch_rows: int = 4096):
        super().__init__(path)
        self.tmp.mkdir(parents=True)
        self._pq = _ArrowStream(self.tmp / "data-00000-of-00001.arrow", batch_rows)

    def write(self, rows: Iterable[dict]) -> None:
        self._pq.write(rows)
        self.count = self._pq.count

    def _finish(self) -> None:
        self._pq.finish()
        self.count = self._pq.count
        fingerprint = os.urandom(8).hex()
        state = {
            "_data_files": [{"filename": "data-00000-of-00001.arrow"}],
            "_fingerprint": fingerprint,
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        }
        (self.tmp / "state.json").write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        info: dict = {"citation": "", "description": "written by gradeset", "homepage": "", "license": ""}
        if self._pq.schema is not None:
            try:
                from datasets import Features

                info["features"] = Features.from_arrow_schema(self._pq.schema).to_dict()
            except ImportError:
                pass
        (self.tmp / "dataset_info.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))


class _ArrowStream(_GrowingSchema):
    """One Arrow IPC stream whose schema grows like :class:`ParquetWriter`'s (parts merged on finish)."""

    def __init__(self, path: Path, batch_rows: int):
        self.path = path
        self.batch_rows = batch_rows
        self.schema = None
        self.count = 0
        self._pending: list[dict] = []
        self._writer = None
        self._sink = None
        self._parts: list[Path] = []

    def write(self, rows: Iterable[dict]) -> None:
        self._pending.extend(rows)
        if len(self._pending) >= self.batch_rows:
            self._flush()

    def _where(self) -> str:
        return str(self.path.parent)

    def _start_part(self) -> None:
        import pyarrow as pa

        self._close_part()
        part = self.path.with_name(f".part-{len(self._parts):05d}.arrow")
        self._parts.append(part)
        self._sink = pa.OSFile(str(part), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def finish(self) -> None:
        import pyarrow as pa

        self._flush()
        if self.schema is None:
            self.schema = pa.schema([])
            self._start_part()
        self._close_part()
        if len(self._parts) == 1:
            os.replace(self._parts[0], self.path)
            return
        with pa.OSFile(str(self.path), "wb") as sink, pa.ipc.new_stream(sink, self.schema) as out:
            for part in self._parts:
                with pa.memory_map(str(part), "r") as src:
                    for batch in pa.ipc.open_stream(src):
                        out.write_table(_conform(pa.Table.from_batches([batch]), self.schema, self.path.parent))
        for part in self._parts:
            discard(part)


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format an output path asks for: by explicit fmt, else by its extension.

    A path with no extension (or ending in '/') is a shard folder; ``.hf`` is a
    Hugging Face ``save_to_disk`` folder.
    """
    if fmt:
        return fmt
    s = str(path)
    name = Path(s).name.lower()
    if s.endswith("/") or s.endswith(os.sep):
        return "shards"
    for ext, f in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"), (".tsv", "csv"),
                   (".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl"),
                   (".hf", "hf")):
        if name.endswith(ext):
            return f
    if Path(s).is_dir():
        return "hf" if (Path(s) / "state.json").exists() else "shards"
    if "." not in name:
        return "shards"
    return "jsonl"


def open_writer(path: str | os.PathLike, fmt: str | None = None, **opts) -> Writer:
    """A writer for path; ``fmt`` overrides the extension (jsonl, parquet, csv, hf, shards,
    shards-parquet)."""
    fmt = output_format(path, fmt)
    if fmt == "jsonl":
        return JsonlWriter(path)
    if fmt == "parquet":
        return ParquetWriter(path, **opts)
    if fmt == "csv":
        return CsvWriter(path)
    if fmt == "hf":
        return HfDiskWriter(path, **opts)
    if fmt in ("shards", "shards-jsonl", "shards-parquet"):
        from gradeset.io.shards import ShardWriter

        shard_fmt = "parquet" if fmt == "shards-parquet" else opts.pop("shard_format", "jsonl")
        return ShardWriter(path, shard_format=shard_fmt, **opts)
    raise GradesetError(f"unknown output format {fmt!r}")


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to size items from any iterable (the unit writers and steps work on)."""
    chunk: list = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_rows(path: str | os.PathLike, rows: Iterable[dict], fmt: str | None = None,
               batch: int = 2048, **opts) -> int:
    """Write an iterable of rows in batches; returns the count."""
    with open_writer(path, fmt, **opts) as w:
        for chunk in batched(rows, batch):
            w.write(chunk)
    return w.count


__all__ = ["Writer", "JsonlWriter", "ParquetWriter", "CsvWriter", "HfDiskWriter", "open_writer",
           "output_format", "write_rows", "dumps", "io"]
