"""`gradeset convert` of group JSONL to Parquet by blocks: the same output, rejects, counts and
exit codes as the row-by-row path, which every test here runs as the reference."""

from __future__ import annotations

import functools
import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from gradeset.cli import main
from gradeset.commands import _blocks_convert
from gradeset.formats.group_table import canonical_group_table
from gradeset.io import jsonl_blocks
from gradeset.io.jsonl_blocks import Block, block_lines, block_table, iter_blocks

FIXTURES = ("groups_canonical.jsonl", "groups_int_answers.jsonl", "groups_bool_answers.jsonl",
            "groups_messy.jsonl")


def run_convert(src, out, capsys, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["convert", str(src), str(out), "-q", *extra])
    return code, capsys.readouterr().err


def both_ways(src, tmp_path, capsys, monkeypatch, *extra: str) -> dict:
    """Convert src by blocks and by rows (the reference); what each wrote and said."""
    tables = []

    def spy(table, keys):
        result = canonical_group_table(table, keys)
        tables.append(result is not None)
        return result

    results = {}
    for way in ("blocks", "rows"):
        out = tmp_path / way / "out.parquet"
        out.parent.mkdir()
        with monkeypatch.context() as m:
            m.setattr("gradeset.formats.group_table.canonical_group_table", spy)
            if way == "rows":
                m.setattr(_blocks_convert, "applies", lambda *a, **k: False)
            code, err = run_convert(src, out, capsys, *extra)
        rejects = out.with_name("out.parquet.rejects.jsonl")
        results[way] = {
            "code": code,
            "err": err.replace(str(tmp_path / way), "OUT"),
            "bytes": out.read_bytes() if out.exists() else None,
            "table": pq.read_table(out) if out.exists() else None,
            "rejects": rejects.read_bytes() if rejects.exists() else None,
        }
    results["arrow_blocks"] = sum(tables)
    return results


def assert_same(r: dict, same_bytes: bool) -> None:
    blocks, rows = r["blocks"], r["rows"]
    assert blocks["code"] == rows["code"]
    assert blocks["err"] == rows["err"]
    assert blocks["rejects"] == rows["rejects"]
    if rows["table"] is None:
        assert blocks["table"] is None
        return
    assert blocks["table"].schema == rows["table"].schema
    assert blocks["table"].to_pylist() == rows["table"].to_pylist()
    if same_bytes:
        assert blocks["bytes"] == rows["bytes"]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_convert_as_the_row_path_does(name, data_dir, tmp_path, capsys, monkeypatch):
    r = both_ways(data_dir / "convert" / name, tmp_path, capsys, monkeypatch)
    assert_same(r, same_bytes=True)
    if name == "groups_messy.jsonl":
        assert r["rows"]["rejects"] is not None  # the fixture really has bad lines
        assert r["arrow_blocks"] == 0
    else:
        assert r["arrow_blocks"] == 1  # and the clean ones really take the Arrow path


def big_file(data_dir, path, n: int, *, bad_at: int | None = None, invalid_at: int | None = None,
             newline: bytes = b"\n", bom: bool = False, ending: bytes = b"\n") -> None:
    """n canonical rows (distinct prompts) built from the fixture, optionally with a bad line."""
    base = [json.loads(x) for x in (data_dir / "convert" / "groups_canonical.jsonl").read_bytes().splitlines()]
    base = [{k: v for k, v in r.items() if k not in ("n", "f", "g", "h")} for r in base]
    lines = []
    for i in range(n):
        row = dict(base[i % len(base)])
        row["prompt"] = f"{row['prompt']} #{i}"
        if row.get("id"):
            row["id"] = f"{row['id']}-{i}"
        lines.append(json.dumps(row).encode())
    if bad_at is not None:
        lines[bad_at - 1] = b'{"prompt": "cut in the mid'
    if invalid_at is not None:  # JSON, but not a valid group
        lines[invalid_at - 1] = b'{"prompt": "p", "responses": [{"text": "t", "score": 2.0}]}'
    data = newline.join(lines) + ending
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


@pytest.mark.parametrize("variant", ["clean", "bad_line_mid_block", "bad_line_and_invalid_row", "crlf", "bom", "empty_last_line",
                                     "no_final_newline"])
def test_big_files_convert_as_the_row_path_does(variant, data_dir, tmp_path, capsys, monkeypatch):
    src = tmp_path / "big.jsonl"
    kw: dict = {
        "clean": {},
        "bad_line_mid_block": {"bad_at": 6000},  # the second block of 4096 lines
        "bad_line_and_invalid_row": {"bad_at": 6000, "invalid_at": 5000},
        "crlf": {"newline": b"\r\n", "ending": b"\r\n"},
        "bom": {"bom": True},
        "empty_last_line": {"ending": b"\n\n"},
        "no_final_newline": {"ending": b""},
    }[variant]
    big_file(data_dir, src, 9000, **kw)
    r = both_ways(src, tmp_path, capsys, monkeypatch)
    # row groups follow the blocks of lines, so they match the row path's only while no line is rejected
    assert_same(r, same_bytes=variant in ("clean", "crlf", "no_final_newline"))
    assert r["blocks"]["code"] == 0
    # a line orjson rejects costs its block an orjson pass; an invalid row sends its block the row way
    assert r["arrow_blocks"] == (2 if variant == "bad_line_and_invalid_row" else 3)
    if variant == "bad_line_and_invalid_row":
        assert [json.loads(x)["line"] for x in r["blocks"]["rejects"].splitlines()] == [5000, 6000]
    if variant == "bad_line_mid_block":
        (reject,) = [json.loads(x) for x in r["blocks"]["rejects"].splitlines()]
        assert (reject["source"], reject["line"]) == (str(src), 6000)
        assert "invalid JSON" in reject["reason"]
        assert "read 9000, written 8999, rejected 1" in r["blocks"]["err"]


def small_blocks(orig):
    @functools.wraps(orig)
    def wrapper(path, max_lines=4096, chunk_bytes=1 << 22):
        return orig(path, max_lines=5, chunk_bytes=97)  # lines cut across reads, many blocks
    return wrapper


@pytest.mark.parametrize("name", FIXTURES)
def test_small_blocks_and_lines_split_across_reads(name, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jsonl_blocks, "iter_blocks", small_blocks(jsonl_blocks.iter_blocks))
    r = both_ways(data_dir / "convert" / name, tmp_path, capsys, monkeypatch)
    assert_same(r, same_bytes=False)


def test_strict_stops_at_the_bad_line_in_the_middle(data_dir, tmp_path, capsys, monkeypatch):
    src = tmp_path / "big.jsonl"
    big_file(data_dir, src, 9000, bad_at=6000)
    r = both_ways(src, tmp_path, capsys, monkeypatch, "--strict")
    assert_same(r, same_bytes=False)
    assert r["blocks"]["code"] == 2 and r["blocks"]["table"] is None
    assert f"{src}:6000" in r["blocks"]["err"]


def test_all_rows_rejected_exits_2_like_the_row_path(tmp_path, capsys, monkeypatch):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"prompt": 1, "responses": []}\n{"prompt": "x", "responses": [{"text": "a", "score": 2}]}\n')
    r = both_ways(src, tmp_path, capsys, monkeypatch, "--from", "group")
    assert_same(r, same_bytes=False)
    assert r["blocks"]["code"] == 2 and "no row could be read" in r["blocks"]["err"]


GOOD = b'{"id": "a", "prompt": "p", "answer": "1", "task": "t", "responses": [{"text": "x", "score": 0.5, ' \
       b'"correct": true, "meta": {"model": "m"}}]}'


@pytest.mark.parametrize("row", [
    b'{"id": "b", "prompt": "p", "responses": [{"text": "x", "score": 1.5}]}',
    b'{"id": "b", "prompt": "p", "responses": [{"text": "x", "score": -0.5}]}',
    b'{"id": "b", "prompt": "p", "responses": [{"score": 0.5}]}',
    b'{"id": "b", "prompt": "p", "responses": [{"text": null, "score": 0.5}]}',
    b'{"id": "b", "prompt": "p", "responses": [null]}',
    b'{"id": "b", "prompt": "p", "responses": [{"text": "x", "metadata": {"model": "m"}}]}',
    b'{"id": "b", "responses": []}',
    b'{"id": "b", "prompt": null, "responses": []}',
    b'{"id": "b", "prompt": "p"}',  # responses filled in for one row only: the row path
    b'{"id": "b", "prompt": "p", "responses": null}',
    b'{"id": "b", "prompt": "p", "answer": null, "responses": [{"text": "x", "correct": null, "meta": null}]}',
    b'{"id": null, "prompt": "p", "answer": "2", "responses": []}',
    b'{"id": "", "prompt": "p", "answer": "2", "responses": []}',
    b'{"prompt": "p", "answer": "2", "responses": []}',
])
def test_rows_the_column_checks_must_catch(row, tmp_path, capsys, monkeypatch):
    """Each row parses with the good ones into one Arrow table, so only the column checks can
    tell that it is rejected or changed by the row path."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([GOOD, row, GOOD.replace(b'"a"', b'"c"')]) + b"\n")
    assert block_table(Block(1, src.read_bytes(), 3)) is not None
    assert_same(both_ways(src, tmp_path, capsys, monkeypatch, "--from", "group"), same_bytes=True)


@pytest.mark.parametrize("rows", [
    [b'{"prompt": "a"}', b'{"prompt": "b", "answer": 3}'],
    [b'{"id": "x", "prompt": "a", "responses": null}', b'{"prompt": "b", "responses": null, "answer": "4"}'],
    [b'{"prompt": "a", "responses": []}', b'{"prompt": "b", "responses": []}'],
    # the row path adds id (and responses) at the end of each row lacking them: their column
    # comes right after the first row's keys, before keys that first appear later
    [b'{"prompt": "a", "responses": []}', b'{"prompt": "b", "responses": [], "extra": 1}'],
    [b'{"prompt": "a", "responses": []}', b'{"prompt": "b", "responses": [], "extra": 1, "id": "z"}'],
    [b'{"prompt": "a"}', b'{"prompt": "b", "answer": "3", "id": "z"}'],
    [b'{"id": null, "prompt": "a", "responses": []}', b'{"prompt": "b", "x": 1, "responses": []}'],
    [b'\n  \n{"prompt": "a", "responses": []}', b'{"prompt": "b", "responses": [], "extra": 1}'],
])
def test_prompt_only_groups_and_appended_keys_by_column(rows, tmp_path, capsys, monkeypatch):
    src = tmp_path / "prompts.jsonl"
    src.write_bytes(b"\n".join(rows) + b"\n")
    r = both_ways(src, tmp_path, capsys, monkeypatch, "--from", "group")
    assert_same(r, same_bytes=True)
    assert r["arrow_blocks"] == 1
    assert all(row["responses"] == [] for row in r["blocks"]["table"].to_pylist())
    assert r["blocks"]["table"].column_names[:3] == (["prompt", "responses", "id"] if b"null" not in rows[0]
                                                     else ["id", "prompt", "responses"])


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("max_lines", [1, 3, 4096])
@pytest.mark.parametrize("max_bytes", [50, 1 << 26])
@pytest.mark.parametrize("ending", [b"", b"\n"])
def test_blocks_hold_exactly_the_lines_file_iteration_gives(chunk, max_lines, max_bytes, ending, data_dir,
                                                            tmp_path):
    src = tmp_path / "x.jsonl.gz"
    data = (data_dir / "convert" / "groups_messy.jsonl").read_bytes() + b"\n\n\r\n" + b"x" * 300 + ending
    with gzip.open(src, "wb") as fh:  # compressed input is read through the same blocks
        fh.write(data)
    expected = list(enumerate(io.BytesIO(data), 1))
    blocks = list(iter_blocks(src, max_lines=max_lines, chunk_bytes=chunk, max_bytes=max_bytes))
    assert [line for b in blocks for line in block_lines(b)] == expected
    assert [b.first_line for b in blocks] == [1] + [sum(b.lines for b in blocks[:i]) + 1 for i in range(1, len(blocks))]
    assert all(b.lines <= max_lines for b in blocks)
    assert all(len(b.data) <= max_bytes or b.lines == 1 for b in blocks)  # only a single long line exceeds it


@pytest.mark.parametrize("line", [
    b"null", b"1", b"[1]", b'"s"', b"\xef\xbb\xbf{\"a\": 1}", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
    b'{"a": 1} {"a": 2}', b'{"a": 1}{"a": 2}', b'{"a": "caf\xe9"}', b'{"a": 1, "a": 2}', b'{"a": "\\ud800"}',
    b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", b'{"a": ' + b"[" * 50000 + b"]" * 50000 + b"}",
    b'{"a": ' + b"[" * 50000 + b"}",
])
def test_lines_arrow_could_misread_or_crash_on_are_left_to_orjson(line):
    # a bare `null` line or nesting 50k deep crashes pyarrow.json outright: reaching it would kill this test
    for data in (line + b"\n", b'{"ok": 1}\n' + line + b"\n", line):
        assert block_table(Block(1, data, data.count(b"\n") + (not data.endswith(b"\n")))) is None


def test_plain_objects_are_parsed_by_arrow_with_dates_kept_as_text():
    t = block_table(Block(1, b'{"a": 1, "d": "2024-01-01"}\r\n\n  \n{"a": 2, "d": null}', 4))
    assert t is not None and t.to_pylist() == [{"a": 1, "d": "2024-01-01"}, {"a": 2, "d": None}]


def mutants(seed: int, n: int) -> list[bytes]:
    """Lines made by breaking a valid group line at random: what a hostile or damaged file holds."""
    import random

    rng = random.Random(seed)
    base = GOOD + b" "
    pieces = [b"null", b"[", b"]", b"{", b"}", b",", b'"', b"\\", b"\\ud800", b"NaN", b"1e999", b"-", b"\xff",
              b"\xef\xbb\xbf", b"\r", b"\t", b"\x00", b"true", b'"k": 1', b"} {", b"\n", b" ", b"0", b"a", b"1.5",
              b"-0", b"1e5", b"\\u00e9", b"\\u0000", b"\\ud83d\\ude00", b'"2024-01-01"', b"[]", b"{}", b"\xc3\xa9"]
    out = []
    for _ in range(n):
        line = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(line))
            op = rng.random()
            if op < 0.4:
                line[i:i] = rng.choice(pieces)
            elif op < 0.7:
                del line[i:i + rng.randint(1, 4)]
            else:
                line[i] = rng.randrange(256)
        out.append(bytes(line).replace(b"\n", b" "))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_arrow_reads_a_block_exactly_as_orjson_plus_the_writer_would_or_declines(seed):
    import orjson
    import pyarrow as pa
    import pyarrow.json as pj

    from gradeset.io.readers import parse_jsonl_line
    from gradeset.io.writers import rows_to_arrow

    read = 0
    for line in mutants(seed, 400):
        block = [GOOD, line, GOOD]
        data = b"\n".join(block) + b"\n"
        table = block_table(Block(1, data, len(block)))
        parsed = [parse_jsonl_line(x + b"\n") for x in block]
        if any(reason is not None for _, reason in parsed):
            assert table is None, block
            continue
        if table is None:
            continue  # declining is always allowed
        rows = [obj for obj, _ in parsed if obj is not None]
        try:
            expected = pj.read_json(pa.BufferReader(b"\n".join(orjson.dumps(r) for r in rows)))
        except pa.ArrowInvalid:
            expected = rows_to_arrow(rows)
        assert table.equals(expected), block
        read += 1
    assert read > 20  # enough damaged-but-valid lines reach Arrow for the comparison to mean something
