"""Tables and HF datasets: column detection, answer shapes, streamed sampling, the load command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import orjson
import pytest

from gradeset.cli import main
from gradeset.errors import GradesetError
from gradeset.sources.tables import (
    ANSWER_CANDIDATES,
    PROMPT_CANDIDATES,
    SOLUTION_CANDIDATES,
    SOURCE_CANDIDATES,
    detect_columns,
    normalize_answer,
    reservoir_sample,
    row_to_group,
)


def _rows(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("name", [c for c in PROMPT_CANDIDATES if c != "messages"])
def test_each_prompt_candidate_is_detected(name):
    cols = detect_columns([f"{name.upper()}", "zzz"])
    assert cols.prompt == name.upper()


@pytest.mark.parametrize("role, names", [("answer", ANSWER_CANDIDATES), ("solution", SOLUTION_CANDIDATES),
                                         ("source", SOURCE_CANDIDATES)])
def test_each_answer_solution_source_candidate_is_detected(role, names):
    for name in names:
        cols = detect_columns(["question", name, "other"])
        assert getattr(cols, role) == name, name
        assert cols.prompt == "question"


def test_candidate_order_and_flags_override():
    cols = detect_columns(["input", "question", "label", "answer", "cot", "solution"])
    assert (cols.prompt, cols.answer, cols.solution) == ("question", "answer", "solution")
    cols = detect_columns(["input", "question", "label", "answer"], prompt="input", answer="label")
    assert (cols.prompt, cols.answer) == ("input", "label") and cols.chosen_by["prompt"] == "flag"
    assert "prompt=input (flag)" in cols.describe()
    with pytest.raises(GradesetError, match="not a column; columns are: question, answer"):
        detect_columns(["question", "answer"], answer="gold_answer")


def test_alpaca_instruction_with_input_context():
    cols = detect_columns(["instruction", "input", "output"])
    assert cols.prompt == "instruction"
    g, _ = row_to_group({"instruction": "Translate", "input": "bonjour", "output": "hello"}, cols)
    assert g["prompt"] == "Translate\n\nbonjour" and "input" not in g and g["output"] == "hello"


def test_answer_shapes():
    assert normalize_answer("Natalia sold 48/2 = 24.\n#### 72") == ("72", "Natalia sold 48/2 = 24.")
    assert normalize_answer("#### 1,234") == ("1234", None)
    assert normalize_answer({"value": "Paris", "aliases": ["Paris", "City of Light"]}) == (
        ["Paris", "City of Light"], None)
    assert normalize_answer({"text": ["4", "four"], "answer_start": [1, 2]}) == (["4", "four"], None)
    assert normalize_answer({"style": "rule", "ground_truth": "34"}) == ("34", None)
    assert normalize_answer(3.0) == (3, None)


def test_solution_without_answer_gives_boxed_answer_and_reference():
    cols = detect_columns(["problem", "solution", "level"])
    g, _ = row_to_group({"problem": "1+1?", "solution": "We get $\\boxed{\\frac{1}{2}}$.", "level": 3}, cols,
                        task="math", source_name="math500")
    assert g["answer"] == "\\frac{1}{2}" and g["reference"].startswith("We get")
    assert g["source"] == "math500" and g["task"] == "math" and g["level"] == 3


def test_verl_rows_and_reserved_names():
    row = {"prompt": [{"role": "user", "content": "2+2?"}], "data_source": "dapo",
           "reward_model": {"style": "rule", "ground_truth": "4"}, "id": "row-7"}
    cols = detect_columns(row.keys(), sample=row)
    g, _ = row_to_group(row, cols)
    assert g["prompt"][0]["content"] == "2+2?" and g["answer"] == "4" and g["source"] == "dapo"
    assert g["orig_id"] == "row-7" and g["id"] != "row-7" and len(g["id"]) == 16


def test_empty_prompt_is_rejected_with_reason():
    cols = detect_columns(["question", "answer"])
    assert row_to_group({"question": "  ", "answer": "1"}, cols) == (None, "question: empty prompt")


def test_reservoir_sample_is_seeded_uniform_and_in_order():
    items = range(100_000)
    a = reservoir_sample(iter(items), 50, seed=1)
    assert a == reservoir_sample(iter(items), 50, seed=1) and a != reservoir_sample(iter(items), 50, seed=2)
    assert len(a) == 50 and a == sorted(a)
    counts = Counter()
    for seed in range(3000):
        counts.update(reservoir_sample(iter(range(10)), 1, seed=seed))
    assert len(counts) == 10 and min(counts.values()) > 200  # each ~300 of 3000
    assert reservoir_sample(iter(range(3)), 10) == [0, 1, 2]


@pytest.fixture()
def table_files(tmp_path):
    rows = [{"Question": f"What is {i}+{i}?", "final_answer": str(2 * i), "rationale": f"{i}+{i}={2 * i}",
             "dataset": "toy"} for i in range(1, 21)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    with open(tmp_path / "t.jsonl", "wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r) + b"\n")
    csv = tmp_path / "t.csv"
    csv.write_text("query,target,explanation\nCapital of France?,Paris,It is Paris.\n,Rome,empty\n"
                   "Capital of Italy?,Rome,It is Rome.\n", encoding="utf-8")
    return tmp_path, rows


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl"])
def test_load_cli_detects_and_writes_groups(table_files, tmp_path, capsys, name):
    folder, rows = table_files
    out = tmp_path / f"out-{name}.jsonl"
    assert main(["load", str(folder / name), "--out", str(out), "--task", "math"]) == 0
    err = capsys.readouterr().err
    assert "columns: prompt=Question, answer=final_answer, solution=rationale, source=dataset" in err
    got = _rows(out)
    assert [g["prompt"] for g in got] == [r["Question"] for r in rows]
    assert got[0]["answer"] == "2" and got[0]["reference"] == "1+1=2" and got[0]["source"] == "toy"
    assert all(g["task"] == "math" and g["responses"] == [] for g in got)


def test_load_cli_csv_rejects_empty_prompt_and_counts(table_files, tmp_path, capsys):
    folder, _ = table_files
    out = tmp_path / "csv.jsonl"
    assert main(["load", str(folder / "t.csv"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert [g["answer"] for g in _rows(out)] == ["Paris", "Rome"]
    assert "read 3, written 2, rejected 1" in err
    rej = _rows(tmp_path / "csv.jsonl.rejects.jsonl")
    assert rej[0]["line"] == 3 and "empty prompt" in rej[0]["reason"]


def test_load_cli_sample_and_max_rows(table_files, tmp_path, capsys):
    folder, rows = table_files
    out = tmp_path / "s.jsonl"
    assert main(["load", str(folder / "t.jsonl"), "--out", str(out), "--max-rows", "10", "--sample", "4",
                 "--seed", "7"]) == 0
    err = capsys.readouterr().err
    first = [g["prompt"] for g in _rows(out)]
    assert len(first) == 4 and set(first) <= {r["Question"] for r in rows[:10]}
    assert "read 10, written 4, rejected 0, skipped 6 (not sampled 6)" in err
    assert main(["load", str(folder / "t.jsonl"), "--out", str(out), "--max-rows", "10", "--sample", "4",
                 "--seed", "7"]) == 0
    assert [g["prompt"] for g in _rows(out)] == first  # same seed, same sample


def test_load_cli_hf_save_to_disk_folder_with_split(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_list([{"instruction": "Say hi", "input": "", "output": "hi"}]),
        "test": datasets.Dataset.from_list([{"instruction": "Say bye", "input": "politely", "output": "bye"}]),
    })
    dd.save_to_disk(str(tmp_path / "hf"))
    out = tmp_path / "hf.jsonl"
    assert main(["load", str(tmp_path / "hf"), "--split", "test", "--out", str(out),
                 "--answer-col", "output"]) == 0
    assert _rows(out)[0]["prompt"] == "Say bye\n\npolitely" and _rows(out)[0]["answer"] == "bye"


def test_load_cli_missing_prompt_column_and_bad_flag(table_files, tmp_path, capsys):
    folder, _ = table_files
    bad = tmp_path / "noprompt.jsonl"
    bad.write_bytes(b'{"foo": 1, "bar": 2}\n')
    assert main(["load", str(bad), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "no prompt column found among foo, bar; name it with --prompt-col" in capsys.readouterr().err
    assert main(["load", str(folder / "t.csv"), "--out", str(tmp_path / "o.jsonl"), "--answer-col", "nope"]) == 2
    assert "--answer-col 'nope' is not a column" in capsys.readouterr().err
    assert main(["load", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.jsonl")]) == 2


def test_load_hub_id_without_network_is_a_clear_error(tmp_path):
    pytest.importorskip("datasets")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    proc = subprocess.run([sys.executable, "-m", "gradeset", "load", "someorg/no-such-dataset", "--config", "main",
                           "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "someorg/no-such-dataset: cannot load from the Hugging Face hub" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tables_groups_for_pipelines_and_python(table_files):
    from gradeset.sources.tables import tables_groups

    folder, rows = table_files
    got = list(tables_groups(str(folder / "t.parquet"), sample=5, seed=1, task="math"))
    assert len(got) == 5 and all(g["task"] == "math" and g["source"] == "toy" for g in got)
    assert [g["prompt"] for g in got] == [g["prompt"] for g in tables_groups(str(folder / "t.parquet"),
                                                                             sample=5, seed=1)]


def test_parquet_batch_sampling_matches_row_sampling(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gradeset.sources.tables import sample_arrow_batches

    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(5000)]
    table = pa.Table.from_pylist(rows)
    for k, seed, max_rows in [(7, 1, None), (100, 2, 3000), (1, 3, None), (6000, 4, None)]:
        by_rows = reservoir_sample(iter(rows[:max_rows] if max_rows else rows), k, seed)
        by_batches = sample_arrow_batches(table.to_batches(max_chunksize=333), k, seed, max_rows)
        assert [r for _, r in by_batches] == by_rows
        assert all(loc == int(r["answer"]) + 1 for loc, r in by_batches)
    pq.write_table(table, tmp_path / "t.parquet")
    with open(tmp_path / "t.jsonl", "wb") as fh:
        fh.writelines(orjson.dumps(r) + b"\n" for r in rows)
    outs = []
    for name in ("t.parquet", "t.jsonl"):
        out = tmp_path / f"{name}.out.jsonl"
        assert main(["load", str(tmp_path / name), "--out", str(out), "--sample", "25", "--seed", "9",
                     "--max-rows", "4000"]) == 0
        outs.append([g["prompt"] for g in _rows(out)])
    assert outs[0] == outs[1] and len(outs[0]) == 25  # same sample from either format


def test_sft_conversations_and_kept_columns():
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Paradox?"},
                        {"role": "assistant", "content": "Cheap beats fast."}], "big": "x" * 100, "small": 1}
    cols = detect_columns(row.keys())
    g, _ = row_to_group(row, cols, keep={"small"})
    assert [m["role"] for m in g["prompt"]] == ["system", "user"] and g["reference"] == "Cheap beats fast."
    assert g["small"] == 1 and "big" not in g
    assert row_to_group({"messages": [{"role": "assistant", "content": "hi"}]}, cols)[1].endswith("no user turn")


def test_load_cli_keep_cols_none(table_files, tmp_path):
    folder, _ = table_files
    out = tmp_path / "k.jsonl"
    assert main(["load", str(folder / "t.jsonl"), "--out", str(out), "--keep-cols", "none",
                 "--solution-col", "rationale"]) == 0
    assert set(_rows(out)[0]) == {"id", "prompt", "answer", "reference", "source", "responses"}


def test_detection_ignores_bom_and_spaces_in_headers(tmp_path):
    cols = detect_columns(["\ufeffQuestion", " Answer "])
    assert (cols.prompt, cols.answer) == ("\ufeffQuestion", " Answer ")
    g, _ = row_to_group({"\ufeffQuestion": "2+2?", " Answer ": "4"}, cols)
    assert (g["prompt"], g["answer"]) == ("2+2?", "4")
