"""``gradeset traces``: first correct of up to N attempts, reference fallback, seed 004 stats."""

from __future__ import annotations

import json

import pytest

from gradeset.cli import main

# per question: the attempt (1-based) that is right; None = never right
RIGHT_AT = {"What is 1+1?": 1, "What is 2+3?": 2, "What is 7*6?": None}
ANSWERS = {"What is 1+1?": "2", "What is 2+3?": "5", "What is 7*6?": "42"}


def make_reply():
    attempts: dict[str, int] = {}

    def reply(request):
        question = next(q for q in RIGHT_AT if q in request.prompt_text)
        attempts[question] = attempts.get(question, 0) + 1
        k = attempts[question]
        good = RIGHT_AT[question] is not None and k >= RIGHT_AT[question]
        answer = ANSWERS[question] if good else "999"
        return f"Let me work it out, attempt {k}.\n#### {answer}"

    return reply, attempts


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_traces_first_correct_fallback_and_stats(data_dir, tmp_path, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    reply, attempts = make_reply()
    out = tmp_path / "traces.jsonl"
    with LoopbackServer(reply=reply) as srv:
        rc = main(["traces", str(data_dir / "eval" / "gsm8k_train.jsonl"), "--out", str(out), "--backend", "openai",
                   "--model", "loop", "--base-url", srv.base_url, "--task", "gsm8k", "--max-attempts", "3",
                   "--temperature", "0.8", "--save-groups", str(tmp_path / "attempts.jsonl"), "--quiet"])
        n_requests = len([r for r in srv.requests if r.path.endswith("/chat/completions")])
    assert rc == 0
    # attempts stop once a prompt is solved: 1 + 2 + 3, not 3 x 3
    assert attempts == {"What is 1+1?": 1, "What is 2+3?": 2, "What is 7*6?": 3}
    assert n_requests == 6
    rows = read_jsonl(out)
    # seed 004's layout for GSM8K: question + "<reasoning>\n\n#### answer"
    assert [r["question"] for r in rows] == list(RIGHT_AT)
    assert "attempt 1" in rows[0]["answer"] and rows[0]["answer"].rstrip().endswith("#### 2")
    assert "attempt 2" in rows[1]["answer"] and rows[1]["answer"].rstrip().endswith("#### 5")
    assert rows[2]["answer"].startswith("Seven sixes")  # the reference
    stats = json.loads((tmp_path / "traces.jsonl.stats.json").read_text())
    assert stats["total_samples"] == 3
    assert stats["grpo_successes"] == 2 and stats["fallback_count"] == 1
    assert stats["success_rate"] == pytest.approx(2 / 3, abs=1e-5)
    assert stats["avg_attempts_for_successes"] == pytest.approx(1.5)
    assert stats["avg_attempts_overall"] == pytest.approx((1 + 2 + 3) / 3)
    assert stats["generations"] == 6 and stats["rounds"] == 3
    graded = read_jsonl(tmp_path / "attempts.jsonl")
    assert [len(g["responses"]) for g in graded] == [1, 2, 3]
    assert [r["correct"] for r in graded[1]["responses"]] == [False, True]


def test_traces_rerun_resumes_from_the_cache(data_dir, tmp_path, monkeypatch):
    from loopback_server import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    reply, _ = make_reply()
    out = tmp_path / "t.jsonl"
    argv = ["traces", str(data_dir / "eval" / "gsm8k_train.jsonl"), "--out", str(out), "--backend", "openai",
            "--model", "loop", "--task", "gsm8k", "--max-attempts", "2", "--to", "trl-sft", "--quiet"]
    with LoopbackServer(reply=reply) as srv:
        assert main([*argv, "--base-url", srv.base_url]) == 0
        first = len(srv.requests)
        first_rows = read_jsonl(out)
        assert main([*argv, "--base-url", srv.base_url]) == 0
        assert len(srv.requests) == first  # everything came from OUT.gencache.jsonl
    assert read_jsonl(out) == first_rows
    assert set(first_rows[0]) >= {"prompt", "completion"}


def test_traces_with_the_transformers_backend(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    rc = main(["traces", str(data_dir / "eval" / "gsm8k_train.jsonl"), "--out", str(out), "--backend",
               "transformers", "--model", str(tiny_model_dir), "--task", "gsm8k", "--max-attempts", "2",
               "--max-tokens", "8", "--seed", "0", "--quiet"])
    assert rc == 0
    stats = json.loads((tmp_path / "t.jsonl.stats.json").read_text())
    # a random 8-dim model never solves these: every prompt falls back after 2 attempts
    assert stats["total_samples"] == 3 and stats["fallback_count"] == 3 - stats["grpo_successes"]
    assert stats["avg_attempts_overall"] <= 2
    assert len(read_jsonl(out)) == 3


def test_traces_without_task_or_reference(tmp_path, monkeypatch, capsys):
    from loopback_server import LoopbackServer

    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"prompt": "What is 1+1?", "answer": "2"}) + "\n")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with LoopbackServer(reply="no idea at all, I am afraid, sorry") as srv:
        argv = ["traces", str(src), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai", "--model", "m",
                "--base-url", srv.base_url, "--max-attempts", "1", "--quiet"]
        assert main(argv) == 2
        assert "--task" in capsys.readouterr().err
        assert main([*argv, "--task", "math"]) == 0
    err = capsys.readouterr().err
    assert "dropped 1" in err  # nothing correct and no reference: counted, not silently lost
