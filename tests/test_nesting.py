"""Rows nested 100, 1000 and 1023 levels deep: every command rejects or handles them, no traceback.

The fixture (tests/data/nesting/deep.jsonl, made by make_deep.py beside it) holds two plain
groups around twelve hostile ones: the prompt, a response's text, a response's meta or the
answer nested 100, 1000 or 1023 levels (orjson reads at most 1024). Rows deeper than the
readers' limit must land in the reject file with their line number; the 100-level ones are
either used or rejected for an ordinary reason; counts add up; stderr has no traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from gradeset.cli import main
from gradeset.io.nesting import MAX_DEPTH, nesting_depth, too_deep
from gradeset.io.readers import parse_jsonl_line, read_json_stream
from gradeset.serve.protocol import RequestError, parse_json

DEEP = Path(__file__).parent / "data" / "nesting" / "deep.jsonl"
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


def fixture_lines() -> list[dict]:
    """line number -> depth and field, as make_deep.py wrote them (ids r0..r13 in line order)."""
    out = []
    for depth in (100, 1000, 1023):
        for field in ("prompt", "text", "meta", "answer"):
            out.append({"depth": depth, "field": field})
    return [{"depth": 4, "field": None}, *out, {"depth": 4, "field": None}]


DEEP_LINES = {i for i, d in enumerate(fixture_lines(), 1) if d["depth"] > MAX_DEPTH}  # 6..13


def rejects(path: Path) -> dict[int, str]:
    return {r["line"]: r["reason"] for r in map(orjson.loads, path.read_bytes().splitlines())}


def summary(err: str) -> dict[str, int]:
    m = re.search(r"read (\d+),? written (\d+).*?rejected (\d+)", err)
    assert m, err
    return dict(zip(("read", "written", "rejected"), map(int, m.groups())))


def clean(err: str) -> str:
    assert "Traceback" not in err and "RecursionError" not in err and "Recursion limit" not in err, err
    return err


def assert_deep_rejected(rej: dict[int, str]) -> None:
    """Every line past the limit is in the reject file with the depth reason and its raw line."""
    for line in DEEP_LINES:
        assert TOO_DEEP in rej[line], (line, rej.get(line))


def test_fixture_is_what_the_generator_writes():
    sys.path.insert(0, str(DEEP.parent))
    import make_deep

    assert DEEP.read_text() == "\n".join(make_deep.lines()) + "\n"
    depths = [nesting_depth(orjson.loads(x)) for x in DEEP.read_bytes().splitlines()]
    assert depths == [d["depth"] for d in fixture_lines()]


def test_depth_is_measured_without_recursion():
    v: object = "x"
    for i in range(200_000):  # far past Python's recursion limit
        v = [v] if i % 2 else {"k": v}
    assert nesting_depth(v) == 200_000
    assert nesting_depth(v, limit=10) == 11  # stops early
    assert nesting_depth("s") == 0 and nesting_depth({}) == 1 and nesting_depth({"a": [1, {"b": []}]}) == 4
    assert too_deep({"a": [[1]]}, limit=3) is None and too_deep({"a": [[[1]]]}, limit=3) is not None


def test_the_line_parser_rejects_deep_rows_with_a_reason():
    for raw, want in zip(DEEP.read_bytes().splitlines(keepends=True), fixture_lines()):
        obj, reason = parse_jsonl_line(raw)
        if want["depth"] > MAX_DEPTH:
            assert obj is None and TOO_DEEP in reason
        else:
            assert reason is None and obj["id"]


def test_pretty_json_stream_too_deep_for_the_stdlib_decoder_is_rejected(tmp_path):
    src = tmp_path / "deep.json"
    src.write_text('{"prompt": "a", "answer": "1"}\n{"prompt": ' + "[" * 5000 + "]" * 5000 + "}\n")
    bad: list = []
    got = [r for _, r in read_json_stream(src, bad.append)]
    assert got == [{"prompt": "a", "answer": "1"}]
    assert [(b.line, TOO_DEEP in b.reason) for b in bad] == [(2, True)]


def test_serve_refuses_deep_bodies_with_a_400():
    body = b'{"task": "math", "completion": "1", "gold": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(RequestError) as exc:
        parse_json(body)
    assert exc.value.status == 400 and "nested too deeply" in str(exc.value)
    assert parse_json(b'{"gold": [[1]]}') == {"gold": [[1]]}


@pytest.mark.parametrize("to", ["group", "trl-dpo"])
def test_convert_to_jsonl_rejects_deep_rows_and_counts_add_up(tmp_path, capsys, to):
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(DEEP), str(out), "--to", to, "-q"]) == 0
    err = clean(capsys.readouterr().err)
    rej = rejects(tmp_path / "out.jsonl.rejects.jsonl")
    assert_deep_rejected(rej)
    raw = {r["line"]: r["raw"] for r in map(orjson.loads, (tmp_path / "out.jsonl.rejects.jsonl").read_bytes().splitlines())}
    lines = DEEP.read_text().splitlines()
    assert all(raw[n] == lines[n - 1] for n in DEEP_LINES)  # the raw line is kept for fixing
    s = summary(err)
    assert s["read"] == 14 == s["written"] + s["rejected"] and s["rejected"] == len(rej)
    if to == "group":
        ids = [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()]
        assert ids == ["r0", "r3", "r4", "r13"]  # the 100-deep meta and answer pass through
        r3 = orjson.loads(out.read_bytes().splitlines()[1])
        assert nesting_depth(r3) == 100


def test_convert_strict_stops_at_the_first_deep_row_with_exit_2(tmp_path, capsys):
    sys.path.insert(0, str(DEEP.parent))
    import make_deep

    src = tmp_path / "in.jsonl"
    src.write_text(make_deep.row(0, None, None) + "\n" + make_deep.row(1, 1000, "meta") + "\n")
    assert main(["convert", str(src), str(tmp_path / "o.jsonl"), "--strict", "-q"]) == 2
    err = clean(capsys.readouterr().err)
    assert f"{src}:2" in err and TOO_DEEP in err


def test_convert_to_parquet_fails_cleanly_or_round_trips_100_levels(tmp_path, capsys):
    # all rows: the 100-deep answer (a list) cannot share a column with string answers
    assert main(["convert", str(DEEP), str(tmp_path / "all.parquet"), "-q"]) == 2
    err = clean(capsys.readouterr().err)
    assert "one Parquet schema" in err and not (tmp_path / "all.parquet").exists()
    assert_deep_rejected(rejects(tmp_path / "all.parquet.rejects.jsonl"))
    # without it: the 100-deep meta goes to Parquet and reads back (past pyarrow's default 100 schema levels)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(x + "\n" for x in DEEP.read_text().splitlines() if '"id": "r4"' not in x))
    pq_out = tmp_path / "out.parquet"
    assert main(["convert", str(src), str(pq_out), "-q"]) == 0
    assert summary(clean(capsys.readouterr().err)) == {"read": 13, "written": 3, "rejected": 10}
    back = tmp_path / "back.jsonl"
    assert main(["convert", str(pq_out), str(back), "-q"]) == 0
    clean(capsys.readouterr().err)
    rows = [orjson.loads(x) for x in back.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r3", "r13"]
    assert rows[1]["responses"][0]["meta"]["k"] == orjson.loads(src.read_text().splitlines()[3])["responses"][0]["meta"]["k"]


def test_inspect_counts_deep_rows_as_bad(capsys):
    assert main(["inspect", str(DEEP), "--json"]) == 0
    out, err = capsys.readouterr()
    clean(err)
    report = orjson.loads(out)
    assert TOO_DEEP in orjson.dumps(report).decode()


def test_verify_grades_the_rest(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert main(["verify", str(DEEP), "--out", str(out), "--task", "math", "-q"]) == 0
    err = clean(capsys.readouterr().err)
    assert_deep_rejected(rejects(tmp_path / "v.jsonl.rejects.jsonl"))
    s = summary(err)
    assert s["read"] == 14 == s["written"] + s["rejected"]
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert all(r["responses"][0]["score"] is not None for r in rows)


@pytest.mark.parametrize("kind", ["dpo", "grpo"])
def test_build_after_verify(tmp_path, capsys, kind):
    graded = tmp_path / "v.jsonl"
    assert main(["verify", str(DEEP), "--out", str(graded), "--task", "math", "-q"]) == 0
    capsys.readouterr()
    # put the deep lines back so build meets them too (verify rejected them)
    src = tmp_path / "in.jsonl"
    deep = [x for n, x in enumerate(DEEP.read_text().splitlines(), 1) if n in DEEP_LINES]
    src.write_text(graded.read_text() + "".join(x + "\n" for x in deep))
    out = tmp_path / f"{kind}.jsonl"
    assert main(["build", kind, str(src), "--out", str(out), "-q"]) == 0
    err = clean(capsys.readouterr().err)
    rej = rejects(tmp_path / f"{kind}.jsonl.rejects.jsonl")
    assert sorted(n for n, why in rej.items() if TOO_DEEP in why) == [5 + i for i in range(len(deep))]
    assert re.search(r"read 12 groups = \d+ used \+ \d+ skipped( \([^)]*\))? \+ 8 rejected", err), err
    assert out.read_bytes().strip()


def test_check_reads_past_deep_rows(tmp_path, capsys):
    rc = main(["check", str(DEEP), "--json", str(tmp_path / "c.json"), "--report", str(tmp_path / "r.html"),
               "--quiet"])
    err = clean(capsys.readouterr().err)
    assert rc in (0, 1)  # checks may fail on this odd data; the input was read (2 would mean unreadable)
    text = (tmp_path / "c.json").read_text()
    assert TOO_DEEP in text or TOO_DEEP in err


def test_pipeline_runs_and_rejects_deep_rows(tmp_path, capsys):
    (tmp_path / "deep.jsonl").write_bytes(DEEP.read_bytes())
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({
        "source": {"path": "deep.jsonl"},
        "steps": [{"verify": {"task": "math"}}],
        "outputs": {"groups": "out/groups",
                    "exports": [{"path": "out/grpo.jsonl", "layout": "group", "build": {"kind": "grpo"}}]},
    }))
    assert main(["run", str(pipe), "-q"]) == 0
    err = clean(capsys.readouterr().err)
    assert "read 14, written 4 groups" in err and "rejected 10" in err
    rej = rejects(tmp_path / "out" / "groups.rejects.jsonl")
    assert_deep_rejected(rej)
    assert len((tmp_path / "out" / "grpo.jsonl").read_bytes().splitlines()) == 4


def test_real_cli_process_prints_no_traceback(tmp_path):
    out = tmp_path / "o.jsonl"
    proc = subprocess.run([sys.executable, "-m", "gradeset", "convert", str(DEEP), str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    clean(proc.stderr)
    assert_deep_rejected(rejects(tmp_path / "o.jsonl.rejects.jsonl"))


def nested_list(levels: int, leaf: object = "x") -> object:
    v = leaf
    for _ in range(levels):
        v = [v]
    return v


def test_csv_cells_holding_deep_json_are_rejected(tmp_path):
    from gradeset.io.readers import read_csv

    src = tmp_path / "in.csv"
    src.write_text('prompt,answer\nok,1\n"' + "[" * 1000 + "]" * 1000 + '",2\n')
    bad: list = []
    assert [r["prompt"] for _, r in read_csv(src, bad.append)] == ["ok"]
    assert [(b.line, TOO_DEEP in b.reason) for b in bad] == [(3, True)]


def test_parquet_rows_past_the_limit_are_rejected_by_row_number(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    deep: object = "x"
    for _ in range(MAX_DEPTH + 2):
        deep = {"k": deep}
    # store_schema=False: pyarrow's own Arrow-schema blob stops near 128 levels; Parquet's schema goes further
    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "answer": "1", "extra": None},
                                         {"prompt": "b", "answer": "2", "extra": deep}]), src, store_schema=False)
    out = tmp_path / "o.jsonl"
    assert main(["convert", str(src), str(out), "-q"]) == 0
    clean(capsys.readouterr().err)
    assert [orjson.loads(x)["prompt"] for x in out.read_bytes().splitlines()] == ["a"]
    rej = rejects(tmp_path / "o.jsonl.rejects.jsonl")
    assert list(rej) == [2] and TOO_DEEP in rej[2]


def test_arrow_type_walks_do_not_recurse():
    import pyarrow as pa

    from gradeset.io.jsonl_blocks import _finite
    from gradeset.io.writers import _has_timestamp, _no_timestamps

    t: pa.DataType = pa.string()
    for _ in range(1200):  # past Python's recursion limit
        t = pa.list_(pa.struct([pa.field("k", t), pa.field("ts", pa.timestamp("s"))]))
    assert _has_timestamp(t) and not _has_timestamp(_no_timestamps(t))
    assert _no_timestamps(pa.struct([pa.field("a", pa.timestamp("s")), pa.field("b", pa.list_(pa.int8()))])) == \
        pa.struct([pa.field("a", pa.string()), pa.field("b", pa.list_(pa.int8()))])
    arr: pa.Array = pa.array([1.0, float("nan")])
    for _ in range(1200):  # past Python's recursion limit
        arr = pa.ListArray.from_arrays(pa.array([0, len(arr)], pa.int32()), arr)
    assert _finite(arr) is False and _finite(pa.array([[1.0, None]])) is True


def test_rows_too_deep_for_orjson_to_write_fail_cleanly_and_rejects_still_land(tmp_path):
    from gradeset.errors import GradesetError
    from gradeset.formats.registry import ImportContext
    from gradeset.io.writers import dumps

    row = {"prompt": nested_list(300)}
    with pytest.raises(GradesetError, match="nested too deeply"):
        dumps(row)
    got: list = []
    ImportContext(source="s", on_reject=got.append).reject(7, "bad prompt", row)
    assert [(r.line, r.reason) for r in got] == [(7, "bad prompt")] and b"too deep" in got[0].raw


@pytest.mark.parametrize("wrap", ["list", "dict"])
def test_a_row_at_the_limit_passes_and_survives_parquet_one_more_level_is_rejected(tmp_path, capsys, wrap):
    def row(depth: int) -> dict:
        v: object = "x"
        for _ in range(depth - 1):  # the row object is the first level
            v = [v] if wrap == "list" else {"k": v}
        return {"prompt": "p", "answer": "1", "extra": v}

    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps(row(MAX_DEPTH)) + b"\n" + orjson.dumps(row(MAX_DEPTH + 1)) + b"\n")
    assert parse_jsonl_line(src.read_bytes().splitlines()[1])[1] is not None
    pq_out, back = tmp_path / "o.parquet", tmp_path / "back.jsonl"
    assert main(["convert", str(src), str(pq_out), "-q"]) == 0
    assert list(rejects(tmp_path / "o.parquet.rejects.jsonl")) == [2]
    assert main(["convert", str(pq_out), str(back), "-q"]) == 0
    clean(capsys.readouterr().err)
    (got,) = [orjson.loads(x) for x in back.read_bytes().splitlines()]
    assert got["extra"] == row(MAX_DEPTH)["extra"]
