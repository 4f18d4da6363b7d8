"""Evaluation metrics on hand-computed fixtures, and ``gradeset eval`` end to end."""

from __future__ import annotations

import csv
import json
from math import comb

import pytest

from gradeset.cli import main
from gradeset.evaluate import compute_metrics, has_answer, has_reasoning, maj_at_k, pass_at_k


def closed_form(n: int, c: int, k: int) -> float:
    return 1.0 - comb(n - c, k) / comb(n, k)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (4, 2, 2), (5, 1, 3), (10, 3, 1), (16, 5, 8),
                                   (16, 0, 16), (16, 16, 16), (200, 7, 50), (1000, 3, 100)])
def test_pass_at_k_matches_closed_form(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-9, abs=1e-12)


def test_pass_at_1_is_the_success_rate_and_bad_inputs_raise():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    assert pass_at_k(8, 6, 4) == 1.0  # fewer wrong than k: some draw always holds a right one
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def r(parsed, correct):
    return {"text": str(parsed), "parsed": parsed, "correct": correct, "score": float(bool(correct))}


def test_maj_at_k_majority_ties_abstentions_and_normalisation():
    assert maj_at_k([r("5", True), r("5", True), r("6", False)], 3) == 1.0
    assert maj_at_k([r("6", False), r("6", False), r("5", True)], 3) == 0.0
    # two-way tie, one right: expected value of a fair tie-break
    assert maj_at_k([r("5", True), r("6", False)], 2) == 0.5
    # three-way tie, one right
    assert maj_at_k([r("1", False), r("2", True), r("3", False)], 3) == pytest.approx(1 / 3)
    # unparsed responses abstain; with no vote at all there is no majority (None, not 0)
    assert maj_at_k([r(None, False), r(None, False), r("5", True)], 3) == 1.0
    assert maj_at_k([r(None, False), r(None, False)], 2) is None
    # "5", "5.0" and " 5 " are one answer: 3 votes beat 2
    assert maj_at_k([r("5", True), r("5.0", True), r(" 5 ", True), r("6", False), r("6", False)], 5) == 1.0
    # only the first k responses vote
    assert maj_at_k([r("6", False), r("5", True), r("5", True)], 1) == 0.0


def test_reasoning_and_answer_detection():
    assert has_reasoning({"text": "<think>add them</think> 5"})
    assert has_reasoning({"text": "<start_working_out>2+3<end_working_out><SOLUTION>5</SOLUTION>"})
    assert has_reasoning({"text": "5", "reasoning": "2 plus 3"})
    assert has_reasoning({"text": "first add 2 and 3</think> so 5"})  # the template opened <think>
    assert not has_reasoning({"text": "<think>  </think> 5"})
    assert not has_reasoning({"text": "The answer is 5", "reasoning": ""})
    assert has_answer({"parsed": "5"}) and not has_answer({"parsed": None}) and not has_answer({"parsed": " "})


def load(data_dir, name):
    return [json.loads(line) for line in (data_dir / "eval" / name).read_text().splitlines()]


def test_metrics_on_hand_computed_fixture(data_dir):
    m = compute_metrics(load(data_dir, "graded.jsonl"), ks=[1, 2, 4])
    assert m["n_groups"] == 3 and m["n_responses"] == 12
    assert m["accuracy"] == pytest.approx(6 / 12)
    assert m["first_sample_accuracy"] == pytest.approx(2 / 3)  # g1 right, g2 wrong, g3 right
    # per group (n=4): c = 2, 1, 3
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4 + 3 / 4) / 3)
    assert m["pass@2"] == pytest.approx((1 - 1 / 6 + 1 - 3 / 6 + 1) / 3)
    assert m["pass@4"] == 1.0
    # maj@2: g1 5 vs 6 tie (0.5), g2 41 vs 42 tie (0.5), g3 Paris vs Lyon tie (0.5)
    assert m["maj@2"] == pytest.approx(0.5)
    # maj@4: g1 "5" x2 (right), g2 "41" x2 (wrong), g3 paris x3 (right)
    assert m["maj@4"] == pytest.approx(2 / 3)
    assert m["thinking_proportion"] == pytest.approx(4 / 12)
    assert m["answer_proportion"] == pytest.approx(11 / 12)
    by_task = m["by_task"]
    assert set(by_task) == {"math", "trivia"}
    assert sum(s["n_responses"] for s in by_task.values()) == 12
    assert by_task["trivia"]["accuracy"] == pytest.approx(3 / 4)
    assert m["by_difficulty"]["hard"]["pass@1"] == pytest.approx(1 / 4)


def test_pass_at_k_skips_groups_with_too_few_samples():
    groups = [{"responses": [r("1", True)] * 4}, {"responses": [r("2", False)] * 2}]
    m = compute_metrics(groups, ks=[1, 4])
    assert m["groups_for_k"] == {"1": 2, "4": 1}
    assert m["pass@4"] == 1.0  # only the 4-sample group counts
    assert m["pass@1"] == pytest.approx(0.5)


def test_eval_cli_writes_seed004_debug_layout(data_dir, tmp_path, capsys):
    src = str(data_dir / "eval" / "graded.jsonl")
    rc = main(["eval", src, "--k", "1,2,4", "--out-dir", str(tmp_path), "--stage", "base", "--run-id", "r1",
               "--json", str(tmp_path / "m.json")])
    assert rc == 0
    out = capsys.readouterr()
    assert "accuracy: 0.5000" in out.out
    debug = tmp_path / "debug"
    assert sorted(p.name for p in debug.iterdir()) == ["base_r1.csv", "base_r1_metrics.json", "base_r1_metrics.txt"]
    rows = list(csv.DictReader((debug / "base_r1.csv").open()))
    assert len(rows) == 12
    assert sum(row["correct"] == "true" for row in rows) == 6
    assert sum(row["has_reasoning"] == "true" for row in rows) == 4
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in ("accuracy", "pass@1", "pass@4", "maj@1", "maj@4", "thinking_proportion", "answer_proportion",
                "n_groups", "n_responses"):
        assert key in metrics
    assert metrics["pass@2"] == pytest.approx(0.7777777, rel=1e-5)
    text = (debug / "base_r1_metrics.txt").read_text()
    assert "stage: base" in text and "thinking_proportion: 0.3333" in text and "[by_task]" in text


def test_eval_grades_ungraded_responses_with_task(data_dir, tmp_path):
    src = str(data_dir / "eval" / "ungraded.jsonl")
    out = tmp_path / "m.json"
    assert main(["eval", src, "--task", "math", "--json", str(out), "--save-groups", str(tmp_path / "g.jsonl")]) == 0
    m = json.loads(out.read_text())
    assert m["accuracy"] == pytest.approx(2 / 4)  # 5 right, 7 wrong, 2.5 == 5/2 right, no answer wrong
    assert m["answer_proportion"] == pytest.approx(3 / 4)
    saved = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [resp["correct"] for g in saved for resp in g["responses"]] == [True, False, True, False]


def test_eval_refuses_ungraded_without_task(data_dir, capsys):
    assert main(["eval", str(data_dir / "eval" / "ungraded.jsonl")]) == 2
    assert "--task" in capsys.readouterr().err


def test_eval_bad_line_is_rejected_and_counted(data_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["eval", str(data_dir / "eval" / "bad_line.jsonl"), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "read 3, written 2, rejected 1" in err
    assert json.loads(out.read_text())["n_groups"] == 2
    rejects = (tmp_path / "m.json.rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["line"] == 2


def test_eval_rejects_bad_k(data_dir, capsys):
    assert main(["eval", str(data_dir / "eval" / "graded.jsonl"), "--k", "0,x"]) == 2
    assert "--k" in capsys.readouterr().err


def test_eval_generates_for_prompt_only_input(tmp_path, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    src = tmp_path / "prompts.jsonl"
    src.write_text(json.dumps({"prompt": "What is 2+3?", "answer": "5", "task": "math"}) + "\n")
    calls = {"n": 0}

    def reply(request, choice=0):
        calls["n"] += 1
        return "<think>2+3</think> \\boxed{5}" if calls["n"] % 4 in (1, 2) else "\\boxed{4}"

    with LoopbackServer(reply=reply) as srv:
        rc = main(["eval", str(src), "--backend", "openai", "--model", "m", "--base-url", srv.base_url,
                   "--k", "1,4", "--out-dir", str(tmp_path), "--stage", "base", "--run-id", "r", "--quiet"])
    assert rc == 0
    m = json.loads((tmp_path / "debug" / "base_r_metrics.json").read_text())
    assert m["n_responses"] == 4 and m["run"]["n"] == 4  # n defaults to the largest k
    assert m["accuracy"] == 0.5 and m["pass@1"] == 0.5 and m["pass@4"] == 1.0
    assert m["maj@4"] == 0.5  # 2 votes for 5, 2 for 4: a tie
    assert m["thinking_proportion"] == 0.5
    rows = list(csv.DictReader((tmp_path / "debug" / "base_r.csv").open()))
    assert {row["model"] for row in rows} == {"m"}
