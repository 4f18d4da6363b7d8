"""`gradeset inspect` / `convert` / `export`: counts that add up, reject files, exit codes."""

from __future__ import annotations

import re

import orjson
import pytest

from gradeset.cli import main


def lines(path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def summary(err: str) -> dict[str, int]:
    m = re.search(r"read (\d+), written (\d+), rejected (\d+)", err)
    assert m, err
    return dict(zip(("read", "written", "rejected"), map(int, m.groups())))


def test_convert_seed002_to_trl_dpo(data_dir, tmp_path, capsys):
    out = tmp_path / "dpo.jsonl"
    assert main(["convert", str(data_dir / "formats" / "seed002_pair_example1.json"), str(out), "--to", "trl-dpo"]) == 0
    (row,) = lines(out)
    assert (row["prompt"], row["chosen"], row["rejected"]) == (
        "79-7=?", "The answer is 72 because 79-7 equals 72.", "Sorry, I don't know.")
    err = capsys.readouterr().err
    assert summary(err) == {"read": 1, "written": 1, "rejected": 0}
    assert "note: seed002" in err and "The answer is" in err


def test_bad_lines_go_to_the_reject_file_and_counts_add_up(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"prompt": "a", "chosen": "x", "rejected": "y"}\n'
        b'{"prompt": "b", "chosen": 5, "rejected": "y"}\n'          # wrong type
        b'{"prompt": "c", "chosen": "x"}\n'                         # missing field
        b'{"prompt": "caf\xe9", "chosen": "x", "rejected": "y"}\n'  # invalid UTF-8
        b'\n'
        b'{"prompt": "d", "chosen": "x", "rejected": "y"}\n'
        b'{"prompt": "e", "chos')                                   # truncated last line
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), str(out), "--to", "trl-sft", "--from", "trl-dpo"]) == 2  # groups of 2 != sft
    capsys.readouterr()
    assert main(["convert", str(src), str(out), "--to", "trl-dpo"]) == 0
    err = capsys.readouterr().err
    counts = summary(err)
    assert counts == {"read": 6, "written": 2, "rejected": 4}
    assert counts["read"] == counts["written"] + counts["rejected"]
    assert [r["prompt"] for r in lines(out)] == ["a", "d"]
    rejects = lines(tmp_path / "out.jsonl.rejects.jsonl")
    assert [r["line"] for r in rejects] == [2, 3, 4, 7]
    assert all(r["source"] == str(src) for r in rejects)
    assert "chosen: expected a string" in rejects[0]["reason"] and "rejected: missing" in rejects[1]["reason"]
    assert "invalid UTF-8" in rejects[2]["reason"] and "raw_base64" in rejects[2]
    assert "truncated" in rejects[3]["reason"] and rejects[3]["raw"] == '{"prompt": "e", "chos'
    assert f"{src}:2: chosen: expected a string" in err  # file and line on the terminal too


def test_strict_stops_at_first_bad_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"prompt": "a", "responses": []}\n{broken\n{"prompt": "b", "responses": []}\n')
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2" in err and "--strict" in err
    assert not out.exists()  # nothing half-written
    assert b"{broken" in (tmp_path / "out.jsonl.rejects.jsonl").read_bytes()


def test_empty_missing_and_unknown_inputs_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert main(["convert", str(empty), str(tmp_path / "o.jsonl")]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"foo": 1}\n')
    assert main(["convert", str(src), str(tmp_path / "o.jsonl")]) == 2
    assert "match no known layout" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "o.jsonl"), "--to", "nonsense"]) == 2
    assert "unknown layout" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(src), str(tmp_path / "o.jsonl")])  # --to is required
    assert exc.value.code == 2


def test_all_rows_bad_writes_nothing_and_exits_2(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"question": "q", "answer": true}\n{"question": "r", "answer": {}}\n')
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), str(out)]) == 2
    assert "nothing written" in capsys.readouterr().err
    assert not out.exists() and len(lines(tmp_path / "out.jsonl.rejects.jsonl")) == 2


def test_folder_with_mixed_layouts(tmp_path, capsys):
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "shard-00000.jsonl").write_bytes(b'{"prompt": "a", "responses": []}\n')
    (d / "shard-00001.jsonl").write_bytes(b'{"positive": "1+1=? The answer is 2", "negative": "no"}\n'
                                          b'{"prompt": "b", "responses": []}\n')
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(d), str(out)]) == 2
    err = capsys.readouterr().err
    assert "mixes layouts" in err and "shard-00000.jsonl:1 is group" in err and "shard-00001.jsonl:1 is seed002" in err
    assert main(["convert", str(d), str(out), "--from", "group"]) == 0
    err = capsys.readouterr().err
    assert summary(err) == {"read": 3, "written": 2, "rejected": 1}
    (rej,) = lines(tmp_path / "out.jsonl.rejects.jsonl")
    assert rej["source"].endswith("shard-00001.jsonl") and rej["line"] == 1 and "prompt: missing" in rej["reason"]


def test_convert_to_seed003_rows_counts_groups_and_notes_rows(tmp_path, capsys):
    src = tmp_path / "g.jsonl"
    src.write_bytes(orjson.dumps({"prompt": "q", "answer": "1", "responses": [
        {"text": "1", "score": 1.0, "correct": True}, {"text": "2", "score": 0.0, "correct": False}]}) + b"\n")
    out = tmp_path / "rows.parquet"
    assert main(["convert", str(src), str(out), "--to", "seed003"]) == 0
    err = capsys.readouterr().err
    assert summary(err) == {"read": 1, "written": 1, "rejected": 0} and "wrote 2 seed003 rows for 1 groups" in err
    import pyarrow.parquet as pq

    t = pq.read_table(out).to_pylist()
    assert [(r["question"], r["completion"], r["correctness_label"]) for r in t] == [("q", "1", 1), ("q", "2", 0)]
    back = tmp_path / "back.jsonl"
    assert main(["convert", str(out), str(back)]) == 0
    (g,) = lines(back)
    assert [r["correct"] for r in g["responses"]] == [True, False]


def test_export_verl_parquet(tmp_path, capsys):
    src = tmp_path / "p.jsonl"
    src.write_bytes(b'{"question": "How many?", "answer": "2 and 2\\n#### 4"}\n')
    out = tmp_path / "verl.parquet"
    assert main(["export", str(src), str(out), "--to", "verl", "--system-prompt", "Think step by step."]) == 0
    import pyarrow.parquet as pq

    (row,) = pq.read_table(out).to_pylist()
    assert row["reward_model"] == {"style": "rule", "ground_truth": "4"}
    assert row["prompt"][0] == {"role": "system", "content": "Think step by step."}
    assert row["extra_info"]["split"] == "train" and row["extra_info"]["index"] == 0


def test_inspect_text_and_json(data_dir, tmp_path, capsys):
    assert main(["inspect", str(data_dir / "formats" / "seed000_grpo_ranked.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "layout: seed000" in out and "responses: 3" in out and "completions" in out and "example 1:" in out
    src = tmp_path / "x.jsonl"
    long = "y" * 1000
    src.write_bytes(b"".join(orjson.dumps({"prompt": f"p{i}", "responses": [{"text": long, "score": 1.0,
                                                                          "correct": i % 2 == 0}]}) + b"\n"
                             for i in range(5)) + b"{bad\n")
    assert main(["inspect", str(src), "--json"]) == 0
    info = orjson.loads(capsys.readouterr().out)
    assert (info["layout"], info["rows"], info["groups"], info["responses"]) == ("group", 6, 5, 5)
    assert info["graded_share"] == 1.0 and info["correct_responses"] == 3 and info["rejected"] == 1
    assert info["buckets"] == {"all-correct": 3, "all-wrong": 2}
    assert info["fields"]["responses"]["types"] == ["list[object]"]
    assert len(info["examples"]) == 3
    assert info["examples"][0]["responses"][0]["text"].endswith("…(+840 chars)")
    assert "5 of 5 sampled rows" in info["why"]


def test_file_where_no_line_parses_still_keeps_every_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"{nope\n[1, 2]\n\xff\xfe\n")
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), str(out)]) == 2
    assert "no readable record" in capsys.readouterr().err
    assert [r["line"] for r in lines(tmp_path / "out.jsonl.rejects.jsonl")] == [1, 2, 3]
    assert not out.exists()


def test_inspect_reports_a_mixed_folder_file_by_file(tmp_path, capsys):
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "a.jsonl").write_bytes(b'{"prompt": "a", "responses": [{"text": "x", "score": 1.0}]}\n')
    (d / "b.jsonl").write_bytes(b'{"positive": "1+1=? The answer is 2", "negative": "no"}\n')
    assert main(["inspect", str(d), "--json"]) == 0
    info = orjson.loads(capsys.readouterr().out)
    assert info["layout"] == "mixed" and "a.jsonl is group" in info["why"] and "b.jsonl is seed002" in info["why"]
    assert (info["files"], info["groups"], info["responses"], info["rejected"]) == (2, 2, 3, 0)
