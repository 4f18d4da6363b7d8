"""Files: every file format round-trips groups; HF folders open in `datasets`; writes are atomic."""

from __future__ import annotations

import gzip

import orjson
import pytest

from gradeset.errors import GradesetError
from gradeset.formats import read_groups
from gradeset.io import ShardWriter, iter_rows, open_writer, read_manifest, write_rows
from gradeset.io.readers import detect_format

GROUPS = [
    {"id": f"g{i}", "prompt": f"What is {i}+{i}?", "answer": str(2 * i), "category": "arith" if i % 2 else None,
     "responses": [{"text": f"{2 * i}", "score": 1.0, "correct": True, "meta": {"model": "m", "sample_index": 0}},
                   {"text": f"{2 * i + 1}", "score": 0.0, "correct": False, "meta": {"model": "m", "sample_index": 1}}]}
    for i in range(25)
]


def _norm(groups):
    """Groups as JSON data (Parquet/Arrow fill absent struct keys with null; drop those for comparing)."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    return [clean(g) for g in groups]


@pytest.mark.parametrize("name", ["g.jsonl", "g.jsonl.gz", "g.parquet", "g.csv", "g.hf", "shards/", "pshards"])
def test_groups_roundtrip_through_every_file_format(tmp_path, name):
    out = tmp_path / name
    fmt = "shards-parquet" if name == "pshards" else None
    n = write_rows(out, [dict(g) for g in GROUPS], fmt=fmt, batch=7)
    assert n == len(GROUPS)
    back = list(read_groups(out))
    assert _norm(back) == _norm(GROUPS)


def test_jsonl_gz_is_really_gzip(tmp_path):
    write_rows(tmp_path / "a.jsonl.gz", [{"prompt": "x"}])
    assert orjson.loads(gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes())) == {"prompt": "x"}


def test_hf_folder_opens_in_datasets_and_datasets_folders_open_here(tmp_path):
    datasets = pytest.importorskip("datasets")
    write_rows(tmp_path / "ours.hf", [dict(g) for g in GROUPS])
    ds = datasets.load_from_disk(str(tmp_path / "ours.hf"))
    assert len(ds) == len(GROUPS) and ds[3]["prompt"] == GROUPS[3]["prompt"]
    assert ds[3]["responses"][1]["text"] == GROUPS[3]["responses"][1]["text"]
    theirs = datasets.Dataset.from_list([{"question": "79-7=?", "answer": 72}, {"question": "1+1=?", "answer": 2}])
    theirs.save_to_disk(str(tmp_path / "theirs"))
    assert detect_format(tmp_path / "theirs") == "hf"
    assert [(g["prompt"], g["answer"]) for g in read_groups(tmp_path / "theirs")] == [("79-7=?", 72), ("1+1=?", 2)]
    datasets.DatasetDict({"train": theirs, "test": theirs.select([0])}).save_to_disk(str(tmp_path / "dd"))
    assert len(list(read_groups(tmp_path / "dd"))) == 2
    assert len(list(read_groups(tmp_path / "dd", split="test"))) == 1


def test_pretty_printed_and_array_json(tmp_path):
    p = tmp_path / "doc.json"
    p.write_text('{\n  "prompt": "a",\n  "responses": []\n}\n\n{\n  "prompt": "b"\n}\n')
    assert detect_format(p) == "json-stream"
    assert [(loc, r["prompt"]) for loc, r in iter_rows(p)] == [(1, "a"), (6, "b")]
    p2 = tmp_path / "arr.json"
    p2.write_text('[{"prompt": "a"}, 3, {"prompt": "b"}]')
    rejects: list = []
    assert [r["prompt"] for _, r in iter_rows(p2, rejects.append)] == ["a", "b"]
    assert rejects[0].line == 2


def test_truncated_and_invalid_utf8_lines_are_rejected_with_line_numbers(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n{"prompt": "half')
    rejects: list = []
    rows = list(iter_rows(p, rejects.append))
    assert [r["prompt"] for _, r in rows] == ["ok"]
    assert [r.line for r in rejects] == [2, 3]
    assert "invalid UTF-8" in rejects[0].reason
    assert "truncated" in rejects[1].reason
    j = rejects[0].to_json()
    assert "raw_base64" in j  # the undecodable bytes are kept exactly


def test_csv_bad_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"question,answer\n1+1=?,2\nonly-one-column\nbad \xff,3\n")
    rejects: list = []
    rows = list(iter_rows(p, rejects.append))
    assert rows == [(2, {"question": "1+1=?", "answer": "2"})]
    assert [(r.line, r.reason.split(":")[0]) for r in rejects] == [(3, "expected 2 columns, got 1"),
                                                                  (4, "invalid UTF-8")]


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b'{"old": 1}\n')
    with pytest.raises(RuntimeError), open_writer(target) as w:
        w.write([{"new": 1}])
        raise RuntimeError("killed")
    assert target.read_bytes() == b'{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp file left behind


def test_parquet_schema_grows_with_late_fields_and_nested_keys(tmp_path):
    import pyarrow.parquet as pq

    rows = ([{"a": i, "r": [{"text": "t", "meta": {"model": "m"}}], "n": None} for i in range(10)]
            + [{"a": 1, "b": "late", "r": [{"text": "u", "meta": {"model": "m", "tokens": 7}}], "n": 2.5}]
            + [{"a": 2, "r": [], "n": 3}])
    out = tmp_path / "x.parquet"
    assert write_rows(out, rows, batch=10, batch_rows=10) == 12
    back = pq.read_table(out).to_pylist()
    assert back[10]["b"] == "late" and back[0]["b"] is None
    assert back[10]["r"][0]["meta"] == {"model": "m", "tokens": 7}  # a nested key first seen late is kept
    assert back[0]["r"][0]["meta"] == {"model": "m", "tokens": None}
    assert [r["n"] for r in back[9:]] == [None, 2.5, 3.0]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]  # the parts were merged and removed


def test_parquet_stops_on_types_that_cannot_merge(tmp_path):
    rows = [{"a": i} for i in range(10)] + [{"a": "ten"}]
    with pytest.raises(GradesetError, match="does not fit the Parquet schema"):
        write_rows(tmp_path / "x.parquet", rows, batch=10, batch_rows=10)
    assert list(tmp_path.iterdir()) == []  # no output, no leftover parts


def test_shard_manifest_counts_checksums_and_resume(tmp_path):
    folder = tmp_path / "s"
    with ShardWriter(folder, rows_per_shard=10, parameters={"p": 1}) as w:
        w.write([{"prompt": str(i)} for i in range(25)])
    m = read_manifest(folder)
    assert m["complete"] and m["rows"] == 25 and [s["rows"] for s in m["shards"]] == [10, 10, 5]
    assert m["schema"] == {"prompt": "string"} and all(len(s["sha256"]) == 64 for s in m["shards"])
    w2 = ShardWriter(folder, rows_per_shard=10, parameters={"p": 1}, resume=True)
    assert w2.finished() == {0, 1, 2}
    (folder / "shard-00001.jsonl").write_bytes(b'{"prompt": "tampered"}\n')
    assert w2.finished() == {0, 2}
    with pytest.raises(GradesetError, match="other parameters"):
        ShardWriter(folder, parameters={"p": 2}, resume=True)


def test_plain_folder_of_files_is_read_in_name_order(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_bytes(b'{"prompt": "2"}\n')
    (tmp_path / "d" / "a.jsonl").write_bytes(b'{"prompt": "1"}\n')
    assert [g["prompt"] for g in read_groups(tmp_path / "d")] == ["1", "2"]


def test_memory_stays_flat_while_streaming_jsonl(tmp_path):
    """Reading streams: peak traced memory is far below the file's size."""
    import tracemalloc

    p = tmp_path / "big.jsonl"
    line = orjson.dumps({"prompt": "x" * 200, "responses": [{"text": "y" * 200, "score": 1.0}] * 4}) + b"\n"
    p.write_bytes(line * 20000)  # ~20 MB
    tracemalloc.start()
    n = sum(1 for _ in read_groups(p))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 20000 and peak < p.stat().st_size / 10


def test_hf_folder_keeps_late_and_nested_fields(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = ([{"prompt": f"p{i}", "meta": {"m": 1}, "late": None} for i in range(5)]
            + [{"prompt": "q", "meta": {"m": 2, "extra": "kept"}, "late": 3, "new": [1, 2]}])
    out = tmp_path / "d.hf"
    assert write_rows(out, rows, batch=5, batch_rows=5) == 6
    ds = datasets.load_from_disk(str(out))
    assert ds[5]["meta"] == {"m": 2, "extra": "kept"} and ds[5]["late"] == 3 and ds[5]["new"] == [1, 2]
    assert ds[0]["late"] is None and ds[0]["new"] is None
    assert sorted(p.name for p in out.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]


def test_parquet_keeps_iso_dates_as_strings_and_falls_back_on_mixed_types(tmp_path):
    """The fast JSON path must type values as from_pylist does: no timestamps invented, and a
    batch Arrow's JSON parser cannot type (int then string in one field) still fails clearly."""
    import pyarrow.parquet as pq

    from gradeset.errors import GradesetError
    from gradeset.io import open_writer

    rows = [{"prompt": "p", "created": "2024-01-01T10:00:00", "meta": {"when": "2024-02-02T00:00:00"},
             "tags": ["2024-03-03T00:00:00"]}, {"prompt": "q", "created": "not a date", "meta": {"when": None},
                                                  "tags": []}]
    out = tmp_path / "d.parquet"
    with open_writer(out) as w:
        w.write(rows)
    table = pq.read_table(out)
    assert str(table.schema.field("created").type) == "string"
    assert table.to_pylist()[0]["meta"]["when"] == "2024-02-02T00:00:00"
    assert table.to_pylist()[0]["tags"] == ["2024-03-03T00:00:00"]
    with pytest.raises(GradesetError, match="JSONL"), open_writer(tmp_path / "m.parquet") as w:
        w.write([{"a": 1}, {"a": "x"}])
