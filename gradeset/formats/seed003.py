"""Seed 003's rows: one row per completion (``question``, ``completion``,
``correctness_label`` 0/1, ``pred_parsed``, gold ``answer``/``solution``, any other
columns), grouped by question.

Grouping streams with bounded memory:

* when the input is a file or folder we first count the rows of each question (a
  cheap pass that keeps one 16-byte key and a count per question), so a group is
  emitted the moment its last row arrives: a file with each question's rows together
  streams with almost nothing held;
* questions whose rows are scattered stay open; when more than ``max_open_groups``
  (default 20,000) are open the oldest are spilled to temporary bucket files on disk
  and regrouped bucket by bucket at the end, so even a file sorted by sample index
  never holds more than the open groups plus one bucket in memory.

Columns equal on every row of a question are group fields; columns that differ are
kept on each response. Nothing is dropped.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from gradeset.formats._util import finish, responses_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import prompt_text, response_text

# Columns that describe one completion, so they belong on the response even when equal.
RESPONSE_COLUMNS = frozenset({
    "completion", "correctness_label", "pred_parsed", "score", "correct", "parsed", "pred", "prediction",
    "finish_reason", "sample_index", "generation_time_ms", "reasoning", "thinking", "meta",
})
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}
SPILL_BUCKETS = 64


def _detect(fields: frozenset[str], row: dict) -> int:
    if {"question", "completion"} <= fields:
        return 100 if "correctness_label" in fields else 90
    return 0


def _label(v):
    """correctness_label as a bool (accepts 0/1, true/false and their CSV spellings); raises ValueError."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[v.strip().lower()]
    raise ValueError(v)


def _problem(row: dict) -> str | None:
    q = row.get("question")
    if not isinstance(q, str):
        return "question: missing" if q is None else f"question: expected a string, got {type(q).__name__}"
    c = row.get("completion")
    if c is not None and not isinstance(c, str):
        return f"completion: expected a string, got {type(c).__name__}"
    try:
        _label(row.get("correctness_label"))
    except ValueError:
        return f"correctness_label: expected 0 or 1, got {row.get('correctness_label')!r}"
    return None


def _key(question: str) -> bytes:
    return hashlib.blake2b(question.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def build_group(rows: list[dict]) -> dict:
    """One group from all rows of one question (in file order)."""
    first = rows[0]
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    shared, per_row = [], []
    for k in names:
        if k in ("question", "answer", "solution"):
            continue
        if k in RESPONSE_COLUMNS:
            per_row.append(k)
            continue
        v0 = first.get(k)
        (shared if all(k in r and r[k] == v0 for r in rows) else per_row).append(k)
    g: dict = {"prompt": first["question"]}
    if "answer" in first:
        g["answer"] = first["answer"]
        if "solution" in first:
            g["reference"] = first["solution"]
    elif "solution" in first:
        g["answer"] = first["solution"]
    for k in shared:
        g[k] = first[k]
    responses = []
    for r in rows:
        if r.get("completion") is None:
            continue
        resp: dict = {"text": r["completion"]}
        label = _label(r.get("correctness_label"))
        if label is not None:
            resp["correct"] = label
            resp["score"] = float(label)
        if r.get("score") is not None:
            resp["score"] = r["score"]
        for k in per_row:
            if k in ("completion", "correctness_label", "score") or k not in r:
                continue
            v = r[k]
            if k == "pred_parsed" and isinstance(v, str) and v.lower() in _BOOL_TEXT:
                v = _BOOL_TEXT[v.lower()]
            resp[k] = v
        responses.append(resp)
    g["responses"] = responses
    return finish(g)


def _count_rows(ctx: ImportContext) -> dict[bytes, int] | None:
    """Rows per question, from a first pass over a re-readable input (None when there is none)."""
    path = ctx.options.get("_path")
    if not path or not Path(path).exists():
        return None
    from gradeset.io.readers import detect_format, input_files, iter_rows

    counts: dict[bytes, int] = {}
    p = Path(path)
    files = input_files(p) if p.is_dir() and detect_format(p) == "shards" else [p]
    for f in files:
        for row in _count_columns(f, ctx.options.get("_split")) if f.suffix == ".parquet" else \
                (r for _, r in iter_rows(f, None, split=ctx.options.get("_split"))):
            if _problem(row) is None:
                k = _key(row["question"])
                counts[k] = counts.get(k, 0) + 1
    return counts


def _count_columns(path: Path, split) -> Iterator[dict]:
    """Only the columns the count needs: Parquet reads them without touching the completions' text
    more than once."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    cols = [c for c in ("question", "completion", "correctness_label") if c in pf.schema_arrow.names]
    for batch in pf.iter_batches(columns=cols, batch_size=8192):
        yield from batch.to_pylist()


class _Spill:
    """Rows of evicted questions, bucketed by key on disk, regrouped at the end."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="gradeset-seed003-")
        self.files: dict[int, object] = {}
        self.keys: set[bytes] = set()

    def add(self, key: bytes, rows: list[dict]) -> None:
        from gradeset.io.writers import dumps

        self.keys.add(key)
        b = key[0] % SPILL_BUCKETS
        fh = self.files.get(b)
        if fh is None:
            fh = self.files[b] = open(Path(self.dir.name) / f"bucket-{b:02d}.jsonl", "wb")  # noqa: SIM115
        for r in rows:
            fh.write(key.hex().encode() + b"\t" + dumps(r) + b"\n")  # type: ignore[attr-defined]

    def groups(self) -> Iterator[dict]:
        try:
            for b in sorted(self.files):
                self.files[b].close()  # type: ignore[attr-defined]
                by_key: dict[str, list[dict]] = {}
                with open(Path(self.dir.name) / f"bucket-{b:02d}.jsonl", "rb") as fh:
                    for line in fh:
                        k, _, raw = line.partition(b"\t")
                        by_key.setdefault(k.decode(), []).append(orjson.loads(raw))
                for rows in by_key.values():
                    yield build_group(rows)
        finally:
            self.dir.cleanup()


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    max_open = int(ctx.options.get("max_open_groups", 20_000))
    counts = _count_rows(ctx) if ctx.options.get("two_pass", True) else None
    open_groups: dict[bytes, list[dict]] = {}
    spill: _Spill | None = None
    n_rows = n_groups = 0
    for loc, row in rows:
        err = _problem(row)
        if err:
            ctx.reject(loc, err, row)
            continue
        n_rows += 1
        k = _key(row["question"])
        if spill is not None and k in spill.keys:
            spill.add(k, [row])
            continue
        entry = open_groups.get(k)
        if entry is None:
            entry = open_groups[k] = []
        entry.append(row)
        if counts is not None and len(entry) >= counts.get(k, 0):
            del open_groups[k]
            n_groups += 1
            yield build_group(entry)
        elif len(open_groups) > max_open:
            spill = spill or _Spill()
            old = next(iter(open_groups))
            spill.add(old, open_groups.pop(old))
    for entry in open_groups.values():
        n_groups += 1
        yield build_group(entry)
    open_groups.clear()
    if spill is not None:
        ctx.note(f"seed003: rows of {len(spill.keys)} questions were scattered through the file; they were "
                 "spilled to disk and grouped at the end")
        for g in spill.groups():
            n_groups += 1
            yield g
    if n_rows:
        ctx.note(f"seed003: {n_rows} rows grouped by question into {n_groups} groups")


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """One row per response (a prompt-only group gives one row without completion)."""
    for g in groups:
        base: dict = {"question": prompt_text(g.get("prompt"))}
        if "answer" in g:
            base["answer"] = g["answer"]
        if g.get("reference") is not None:
            base["solution"] = g["reference"]
        for k, v in g.items():
            if k not in ("prompt", "responses", "answer", "reference"):
                base[k] = v
        rs = responses_of(g)
        if not rs:
            yield base
            continue
        for r in rs:
            row = dict(base)
            row["completion"] = response_text(r)
            correct, score = r.get("correct"), r.get("score")
            if isinstance(correct, bool):
                label = int(correct)
            elif isinstance(score, int | float) and not isinstance(score, bool):
                label = int(score >= 1.0)
            else:
                label = None
            row["correctness_label"] = label
            row["score"] = score  # always written: one column set for every row (Parquet, CSV)
            for k, v in r.items():
                if k not in ("text", "score", "correct"):
                    row[k] = v
            yield row


register(Layout("seed003", "seed 003 rows: question/completion/correctness_label, one row per completion",
                _detect, to_groups, from_groups, aliases=("rows", "per-completion", "gnosis")))
