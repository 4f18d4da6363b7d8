"""What a pipeline run reports: per-stage numbers in the check report, job vs invocation stats."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from gradeset.errors import GradesetError
from gradeset.io.readers import read_jsonl
from gradeset.run.local import prepare, run_pipeline
from gradeset.run.pipeline import PipelineError

sys.path.insert(0, str(Path(__file__).parent))
from loopback_server import LoopbackServer  # noqa: E402

RUN_DATA = Path(__file__).parent / "data" / "run"
sys.path.insert(0, str(RUN_DATA))


def prompts(folder: Path, n: int = 40) -> Path:
    rows = []
    for i, (_, r) in enumerate(read_jsonl(RUN_DATA / "groups.jsonl")):
        if i >= n:
            break
        rows.append({"prompt": r["prompt"], "answer": r["answer"], "task": "math", "n": r["n"]})
    p = folder / "prompts.jsonl"
    p.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return p


def reply(req) -> str:
    """Right for prompts whose first number is even, wrong otherwise: a known accuracy."""
    nums = [int(x) for x in re.findall(r"-?\d+", req.prompt_text)]
    a, b = nums[0], nums[1]
    return f"\\boxed{{{a + b if a % 2 == 0 else a + b + 1}}}"


def doc(url: str, steps_after: list | None = None, steps_before: list | None = None) -> dict:
    return {
        "source": {"path": "prompts.jsonl"},
        "steps": [*(steps_before or []), {"generate": {"backend": "openai", "base_url": url, "model": "loopback", "n": 2,
                                "cache_path": "out/requests.cache"}},
                  {"verify": {"task": "math"}}, *(steps_after or [])],
        "outputs": {"groups": "out/groups",
                    "check": {"json": "out/check.json", "group_size": 2, "min_coverage": 0.0,
                              "max_zero_variance": 1.0, "disable": ["duplicates", "near_duplicates"]}},
        "run": {"chunk_size": 10},
    }


def write(folder: Path, d: dict) -> Path:
    p = folder / "p.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def expected_correct(path: Path) -> int:
    right = 0
    for _, r in read_jsonl(path):
        a = int(re.findall(r"-?\d+", r["prompt"])[0])
        right += 2 if a % 2 == 0 else 0
    return right


def test_counts_per_stage_show_responses_scores_and_accuracy_for_generate_and_verify(tmp_path):
    src = prompts(tmp_path)
    with LoopbackServer(reply) as srv:
        summary = run_pipeline(write(tmp_path, doc(srv.base_url)), progress=False)
    stages = {s["name"]: s for s in orjson.loads((tmp_path / "out" / "check.json").read_bytes())["stages"]}
    gen, ver = stages["generate"], stages["verify"]
    assert gen["groups"] == 40 and gen["responses"] == 80
    assert gen["coverage"] == 0.0 and gen["accuracy"] is None  # generated, not graded yet
    assert ver["responses"] == 80 and ver["coverage"] == 1.0
    assert ver["accuracy"] == pytest.approx(expected_correct(src) / 80)
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["generate"]["stats"]["generated"] == 80


def test_resumed_run_reports_whole_job_and_this_invocation_separately(tmp_path, monkeypatch):
    src = prompts(tmp_path)
    unique = len({r["prompt"] for _, r in read_jsonl(src)})
    # generate after a whole-stream step is replayed over every chunk on resume (the request cache
    # answers the finished ones); the first invocation crashes on its 3rd chunk
    d = doc("", [{"runsteps:Crash": {"at": 3}}], steps_before=["runsteps:FirstSeen"])
    with LoopbackServer(reply) as srv:
        d["steps"][1]["generate"]["base_url"] = srv.base_url
        p = write(tmp_path, d)
        monkeypatch.setenv("RUNSTEPS_CRASH", "1")
        with pytest.raises(GradesetError, match="boom"):
            run_pipeline(p, progress=False)
        first_requests = srv.count
        monkeypatch.delenv("RUNSTEPS_CRASH")
        summary = run_pipeline(p, progress=False)
        second_requests = srv.count - first_requests
    gen = {s["step"]: s for s in summary["steps"]}["generate"]
    # the job generated every sample exactly once; this invocation only what the first one had not
    assert gen["stats"]["generated"] == 2 * unique
    assert gen["stats"]["requests"] == first_requests + second_requests
    assert 0 < gen["this_run"]["requests"] == second_requests
    assert 0 < gen["this_run"]["generated"] < 2 * unique and gen["this_run"]["cached"] > 0
    from gradeset.run.summary import format_summary

    text = format_summary(summary)
    assert "generate in this invocation: " in text and f"requests={second_requests}" in text


def test_check_only_rejects_an_unknown_verifier_before_any_work(tmp_path):
    prompts(tmp_path)
    d = doc("http://127.0.0.1:9/v1")
    d["steps"][1] = {"verify": {"task": "gsm8kk"}}
    with pytest.raises(PipelineError, match=r"steps\[1\]\.verify: .*gsm8kk"):
        prepare(write(tmp_path, d))
    d["steps"][1] = {"verify": {"task": "math", "no_such_option": 1}}
    with pytest.raises(PipelineError, match=r"steps\[1\]\.verify: .*no_such_option"):
        prepare(write(tmp_path, d))


def test_run_shows_sample_progress_inside_each_chunk(tmp_path, capsys, monkeypatch):
    from gradeset.cli import main

    monkeypatch.delenv("GRADESET_NO_PROGRESS", raising=False)
    prompts(tmp_path, n=20)
    with LoopbackServer(reply) as srv:
        assert main(["run", str(write(tmp_path, doc(srv.base_url)))]) == 0
    err = capsys.readouterr().err
    # one sample bar per chunk (2 chunks of 10 groups x 2 samples) besides the chunk-level bar
    assert len(re.findall(r"generate: 100%\|[^\n\r]*\| 20/20", err)) == 2, err[-2000:]


def test_report_explains_wrong_answers_and_lists_exports(tmp_path):
    prompts(tmp_path)
    d = doc("")
    d["outputs"]["check"]["report"] = "out/report.html"
    d["outputs"]["exports"] = [{"path": "out/grpo.jsonl", "build": {"kind": "grpo"}},
                               {"path": "out/dpo.jsonl", "build": {"kind": "dpo"}}]
    with LoopbackServer(reply) as srv:
        d["steps"][0]["generate"]["base_url"] = srv.base_url
        summary = run_pipeline(write(tmp_path, d), progress=False)
    rep = orjson.loads((tmp_path / "out" / "check.json").read_bytes())
    st = rep["stats"]
    verify = next(s for s in rep["stages"] if s["name"] == "verify")
    wrong = round(verify["responses"] * (1 - verify["accuracy"]))
    assert sum(st["wrong_reasons"].values()) == wrong > 0
    assert st["length_by_verdict"]["wrong"]["n"] == wrong and st["length_by_verdict"]["correct"]["n"] == 80 - wrong
    assert sum(st["distinct_answers"].values()) == 40
    assert st["sampling"][0]["model"] == "loopback" and st["sampling"][0]["responses"] == 80
    rows = {e["layout"]: e["rows"] for e in summary["exports"]}
    assert {e["layout"]: e["rows"] for e in rep["exports"]} == rows
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Why answers were wrong" in html and "Rows per export" in html and "loopback" in html
    assert next(iter(st["wrong_reasons"])) in html


def test_a_step_error_keeps_the_exit_code_the_step_chose():
    from gradeset.errors import CheckFailed
    from gradeset.run.accounting import step_error

    assert step_error(0, object(), CheckFailed("some samples failed"), 3).exit_code == 1
    assert step_error(0, object(), GradesetError("nothing worked")).exit_code == 2
    assert step_error(0, object(), RuntimeError("boom")).exit_code == 2
