"""verify_groups, the killable worker pool, the step and the ``gradeset verify`` command."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from gradeset.cli import main
from gradeset.steps import build_step
from gradeset.verify import verify_groups

DATA = Path(__file__).parent / "data" / "verify"


def _group(answer, *texts, task=None, **meta):
    g = {"prompt": "q", "answer": answer, "responses": [{"text": t, "meta": dict(meta)} for t in texts]}
    if task:
        g["task"] = task
    return g


def test_pool_kills_runaway_grades_and_keeps_going(tmp_path):
    target = tmp_path / "pwned"
    hostile = [
        "\\boxed{9^{9^{9^{9}}}}",
        "x" + "{" * 10000 + " \\boxed{" + "{" * 10000,
        f"\\boxed{{__import__('os').system('touch {target}')}}",
    ]
    g = _group("5", "\\boxed{5}", *hostile, "\\boxed{6}", "\\boxed{5}")
    out = verify_groups([g], task="math", workers=2, timeout=1.0)
    rs = out[0]["responses"]
    assert [r["correct"] for r in rs] == [True, False, False, False, False, True]
    # a power tower is refused by the exact path's size bound, never handed to sympy's float rounding
    assert rs[1]["meta"]["verify_detail"] in ("timeout", "not compared: numbers beyond the exact path's bounds")
    assert rs[2]["parsed"] is None  # unbalanced: no complete box, truncated
    assert not target.exists()


def test_pool_kills_a_grade_that_never_returns(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(DATA))
    monkeypatch.syspath_prepend(str(DATA))
    g = _group("5", "5", "spin", "6", "5")
    out = verify_groups([g], task="python:plugin_example:spin", workers=2, timeout=1.0)
    rs = out[0]["responses"]
    assert [r["correct"] for r in rs] == [True, False, False, True]
    assert rs[1]["parsed"] is None and rs[1]["meta"]["verify_detail"] == "timeout"
    assert "verify_path" not in rs[1]["meta"]  # a timeout is no verdict of any path


def test_truncated_by_finish_reason_is_never_graded():
    g = _group("5", "\\boxed{5}", finish_reason="length")
    r = verify_groups([g], workers=0)[0]["responses"][0]
    assert r["parsed"] is None and r["correct"] is False and r["score"] == 0.0


def test_failed_generations_stay_ungraded_and_make_no_dpo_rejected():
    from gradeset.shape import build_dpo

    g = _group("5", "\\boxed{5}", "\\boxed{4}")
    g["responses"].append({"text": "", "failed": True, "meta": {"error": "HTTP 500 after 4 tries"}})
    r_ok, r_wrong, r_failed = verify_groups([g], workers=0)[0]["responses"]
    assert (r_ok["correct"], r_wrong["correct"]) == (True, False)
    assert r_failed["score"] is None and r_failed["correct"] is None and r_failed["parsed"] is None
    assert r_failed["meta"]["verify_detail"].startswith("generation failed")
    pairs, _ = build_dpo([g], strategy="correct-vs-incorrect", pairs_per_prompt=5)
    assert [p["responses"][1]["text"] for p in pairs] == ["\\boxed{4}"]  # never the failed ""


def test_auto_task_uses_each_groups_task_and_fills_every_response():
    groups = [
        _group("5", "\\boxed{5}", "\\boxed{4}", task="math"),
        _group("B", "Answer: B", "I think A is wrong", task="mcq"),
        _group(["Paris"], "\\boxed{paris}", task="trivia"),
        {"prompt": "no responses", "answer": "1", "responses": []},
    ]
    out = verify_groups(groups, task="auto", workers=1, timeout=5, precision=6)
    got = [[r["correct"] for r in g["responses"]] for g in out]
    assert got == [[True, False], [True, False], [True], []]
    assert all(set(r) >= {"score", "correct", "parsed"} for g in out for r in g["responses"])


def test_code_task_fills_execution_output():
    g = {"prompt": "double", "answer": None, "tests": ["assert double(3) == 6"], "task": "code",
         "responses": [{"text": "```python\ndef double(x):\n    return x * 2\n```"}]}
    r = verify_groups([g], task="auto", workers=1)[0]["responses"][0]
    assert r["correct"] and "passed 1/1" in r["execution_output"]


def test_plugin_runs_in_worker_processes(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(DATA))
    monkeypatch.syspath_prepend(str(DATA))
    g = _group("yes", "Yes", "no")
    out = verify_groups([g], task="python:plugin_example:grade", workers=1)
    assert [r["correct"] for r in out[0]["responses"]] == [True, False]


def test_step_is_registered_picklable_and_counts():
    step = build_step("verify", {"task": "math", "workers": 1, "timeout": 5})
    step = pickle.loads(pickle.dumps(step))
    batch = [_group("5", "\\boxed{5}", "\\boxed{7}", "no answer here at all"),
             _group("2", "\\boxed{2}", finish_reason="length")]
    try:
        out = step(batch)
        out = step([_group("1", "\\boxed{1}")])
    finally:
        step.close()
    assert out[0]["responses"][0]["correct"] is True
    s = step.stats
    assert s["correct"] == 2 and s["truncated"] == 1
    assert s["graded"] + s["unparsed"] == 5


def test_cli_verify_writes_fields_and_reports(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    rows = [_group("5", "\\boxed{5}", "\\boxed{6}"), _group("1/2", "The answer is 0.5.")]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["verify", str(src), "--out", str(out), "--task", "math", "--workers", "1", "--timeout", "5"])
    assert code == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [[r["correct"] for r in g["responses"]] for g in written] == [[True, False], [True]]
    err = capsys.readouterr().err
    assert "coverage 100.0%" in err and "accuracy 66.7%" in err and "unparsed 0" in err
    assert "rejected 1" in err
    assert (tmp_path / "out.jsonl.rejects.jsonl").exists()


def test_cli_coverage_counts_scored_responses_and_excludes_failed_generations(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    g = _group("5", "\\boxed{5}", "no idea at all, sorry and")
    g["responses"].append({"text": "", "failed": True})
    g["responses"].append({"text": "\\boxed{4}"})
    src.write_text(json.dumps(g) + "\n", encoding="utf-8")
    assert main(["verify", str(src), "--out", str(tmp_path / "o.jsonl"), "--task", "math", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    # 3 of 4 scored (the failed generation is not), 2 with an answer, 1 right
    assert "coverage 75.0% (scored 3, answer extracted from 2)" in err
    assert "accuracy 25.0%" in err and "unparsed 1" in err and "failed generations 1" in err


def test_cli_verify_bad_task_is_exit_2(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_group("5", "\\boxed{5}")) + "\n")
    assert main(["verify", str(src), "--out", str(tmp_path / "o.jsonl"), "--task", "nope"]) == 2
    assert "unknown verifier" in capsys.readouterr().err


def test_cli_options_and_format_tags(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_group("5", "<start_working_out>3<end_working_out><SOLUTION>5</SOLUTION>")) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["verify", str(src), "--out", str(out), "--task", "math", "--format-tags", "solution",
                 "-O", "precision=4", "--workers", "0"]) == 0
    r = json.loads(out.read_text())["responses"][0]
    assert r["correct"] and r["parsed"] == "5"


def test_cli_verify_exports_seed003_rows(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_group("5", "\\boxed{5}", "\\boxed{6}")) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["verify", str(src), "--out", str(out), "--task", "math", "--to", "seed003"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["correctness_label"] for r in rows] == [1, 0]
    assert "wrote 2 seed003 rows for 1 groups" in capsys.readouterr().err


def test_pool_replaces_a_worker_that_died_between_batches():
    import os
    import signal

    from gradeset.verify.groups import Grader

    grader = Grader(task="math", workers=1, timeout=5)
    try:
        grader.grade([_group("1", "\\boxed{1}")])
        os.kill(grader.pool.workers[0].proc.pid, signal.SIGKILL)
        grader.pool.workers[0].proc.wait()
        out = grader.grade([_group("2", "\\boxed{2}", "\\boxed{3}")])
    finally:
        grader.close()
    assert [r["correct"] for r in out[0]["responses"]] == [True, False]
    assert grader.stats["errors"] == 0
