"""Seed 003 benchmark preparation: merged math table and MMLU-Pro letters."""

from __future__ import annotations

import csv

import orjson
import pytest

from gradeset.cli import main
from gradeset.sources.benchmarks import mmlu_pro_row


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def math_files(tmp_path):
    gsm = tmp_path / "gsm8k.jsonl"
    gsm.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [
        {"question": "Natalia sold 48 clips in April and half as many in May. How many in total?",
         "answer": "In May she sold 48/2 = 24.\nIn total 48+24 = 72.\n#### 72"},
        {"question": "Weng earns $12 an hour. How much for 50 minutes?", "answer": "12/60*50 = 10\n#### 10"},
    ]))
    math500 = tmp_path / "math500.csv"
    math500.write_text(
        "problem,solution,level\n"
        "\"Compute $\\dfrac{1}{2}+\\dfrac{1}{3}$.\",\"Add: $\\boxed{\\frac{5}{6}}$.\",2\n"
        "\"What is $\\sqrt{16}$?\",\"It is $\\boxed{4}$.\",1\n"
        "\"No answer here\",\"We cannot say.\n(long explanation that is not an answer at all, really)\",5\n",
        encoding="utf-8")
    aime = tmp_path / "aime.jsonl"
    aime.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [
        {"problem": "Find the remainder when 2^10 is divided by 1000.", "answer": 24, "source": "aime-2020"},
        # a duplicate of a GSM8K question: kept once
        {"problem": "Natalia sold 48 clips in April and half as many in May. How many in total?", "answer": 72},
    ]))
    return gsm, math500, aime


def test_math_merge_standard_columns_and_answers(math_files, tmp_path, capsys):
    gsm, math500, aime = math_files
    out = tmp_path / "merged.csv"
    assert main(["prepare", "math-merge", str(gsm), f"MATH-500={math500}", str(aime), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    rows = _csv(out)
    assert list(rows[0]) == ["question", "solution", "original_source"]
    assert [(r["solution"], r["original_source"]) for r in rows] == [
        ("72", "gsm8k"), ("10", "gsm8k"), ("\\frac{5}{6}", "MATH-500"), ("4", "MATH-500"), ("24", "aime-2020")]
    assert "read 7, written 5, rejected 1, skipped 1 (duplicate question 1)" in err
    assert "math500.csv: question=problem, answer=-, solution=solution" in err
    rej = [orjson.loads(x) for x in (tmp_path / "merged.csv.rejects.jsonl").read_bytes().splitlines()]
    assert rej[0]["line"] == 4 and "no final answer" in rej[0]["reason"]


def test_math_merge_keep_duplicates_and_reference(math_files, tmp_path):
    gsm, _, aime = math_files
    out = tmp_path / "m.csv"
    assert main(["prepare", "math-merge", str(gsm), str(aime), "--out", str(out), "--keep-duplicates",
                 "--keep-reference", "--out-hf", str(tmp_path / "m_hf")]) == 0
    rows = _csv(out)
    assert len(rows) == 4 and rows[0]["reference"].startswith("In May she sold")
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_from_disk(str(tmp_path / "m_hf"))
    assert ds.column_names == ["question", "solution", "original_source", "reference"]
    assert ds["solution"] == [r["solution"] for r in rows]


def test_mmlu_pro_rows():
    row = {"question": "Which is prime?", "options": ["4", "6", "7", "9"], "answer": "C", "answer_index": 2,
           "category": "math"}
    out, reason = mmlu_pro_row(row, keep=["category"])
    assert reason is None
    assert out == {"question": "Which is prime?\n\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9", "answer": "C",
                   "category": "math"}
    assert mmlu_pro_row({**row, "answer": None})[0]["answer"] == "C"  # index alone
    assert mmlu_pro_row({**row, "answer_index": None, "answer": "(d)"})[0]["answer"] == "D"
    assert "disagrees" in mmlu_pro_row({**row, "answer": "B"})[1]
    assert "outside" in mmlu_pro_row({**row, "answer": None, "answer_index": 7})[1]
    assert "only 4 options" in mmlu_pro_row({**row, "answer": "J", "answer_index": None})[1]
    assert "not a letter" in mmlu_pro_row({**row, "answer": "K", "answer_index": None})[1]
    assert "expected 2 to 10" in mmlu_pro_row({**row, "options": [str(i) for i in range(11)]})[1]
    ten = {**row, "options": [str(i) for i in range(10)], "answer": "J", "answer_index": 9}
    assert mmlu_pro_row(ten)[0]["question"].endswith("J. 9")


def test_mmlu_pro_cli_from_parquet_and_csv(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question_id": 1, "question": "2+2?", "options": ["3", "4", "5"], "answer": "B", "answer_index": 1,
             "category": "math", "src": "ori"},
            {"question_id": 2, "question": "Sky?", "options": ["blue", "green"], "answer": "A", "answer_index": 1,
             "category": "other", "src": "ori"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mmlu.parquet")
    out = tmp_path / "mmlu.csv"
    assert main(["prepare", "mmlu-pro", str(tmp_path / "mmlu.parquet"), "--out", str(out), "--keep", "category"]) == 0
    got = _csv(out)
    assert got == [{"question": "2+2?\n\nOptions:\nA. 3\nB. 4\nC. 5", "answer": "B", "category": "math"}]
    assert "read 2, written 1, rejected 1" in capsys.readouterr().err
    # options stored as JSON text in a CSV are understood too
    src = tmp_path / "mm.csv"
    src.write_text('question,options,answer\n"Pick","[""x"", ""y""]",B\n', encoding="utf-8")
    assert main(["prepare", "mmlu-pro", str(src), "--out", str(tmp_path / "o.csv")]) == 0
    assert _csv(tmp_path / "o.csv") == [{"question": "Pick\n\nOptions:\nA. x\nB. y", "answer": "B"}]
