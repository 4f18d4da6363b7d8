"""Issue 12.1: data never chooses code to run.

A row's ``task`` field is hostile input. Whatever it says (``builtins:exec``,
``python:os:system``, ``timeit:timeit``, a real gradeset class path, a test plugin whose
import writes a marker file), verify, eval, check, the TRL reward wrapper and the
pipeline runner never import or call it; the row is rejected or left ungraded with the
reason. The same plugin named by the user (``--task python:...``) still runs, which is
also what proves the marker mechanism works.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import orjson
import pytest
import yaml

from gradeset.cli import main
from gradeset.io.readers import read_jsonl
from gradeset.train.rewards import VerifierReward
from gradeset.verify import get_verifier, verify_groups
from gradeset.verify.registry import VERIFIERS, UntrustedTask, data_task, register_verifier

SECURITY = Path(__file__).parent / "data" / "security"

# names a row might use to pick code; each must be refused without importing anything
HOSTILE_TASKS = [
    "builtins:exec",
    "python:builtins:exec",
    "builtins:eval",
    "python:os:system",
    "os:system",
    "timeit:timeit",
    "gradeset.verify.maths:MathVerifier",
    "python:gradeset.verify.maths:MathVerifier",
    "marker_plugin:grade",
    "python:marker_plugin:grade",
    "no_such_verifier",
]


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    """The file the hostile completions and the marker plugin's import would write."""
    path = tmp_path / "MARKER"
    monkeypatch.setenv("GRADESET_TEST_MARKER", str(path))
    # worker processes and this process can both find marker_plugin: only trust stops them
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SECURITY), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(SECURITY))
    monkeypatch.delitem(sys.modules, "marker_plugin", raising=False)
    return path


def hostile_completion(marker: Path) -> str:
    """Python (and shell-ish) text that writes the marker when anything executes it."""
    return f"open({str(marker)!r}, 'w').write('pwned')"


def hostile_groups(marker: Path) -> list[dict]:
    groups = [{"id": f"bad{i}", "prompt": "p", "task": t, "answer": "pass",
               "responses": [{"text": hostile_completion(marker)}]} for i, t in enumerate(HOSTILE_TASKS)]
    groups.append({"id": "good", "prompt": "What is 2+2?", "task": "math", "answer": "4",
                   "responses": [{"text": "\\boxed{4}"}, {"text": "\\boxed{5}"}]})
    return groups


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def assert_nothing_ran(marker: Path) -> None:
    assert not marker.exists(), "a data row made gradeset import or run code"
    assert "marker_plugin" not in sys.modules


@pytest.mark.parametrize("task", HOSTILE_TASKS)
def test_data_task_accepts_registered_names_only(task):
    with pytest.raises(UntrustedTask) as info:
        data_task(task)
    assert repr(task) in str(info.value)
    assert data_task("math") == "math" and data_task("mmlu") == "mcq" and data_task("GSM8K") == "gsm8k"
    # a name the user gave for this run may be repeated by a row
    assert data_task("python:marker_plugin:grade", trusted={"python:marker_plugin:grade"})


def test_code_target_reason_says_how_to_choose_a_plugin():
    with pytest.raises(UntrustedTask, match="names code to import.*--task"):
        data_task("builtins:exec")
    with pytest.raises(UntrustedTask, match="unknown verifier"):
        data_task("no_such_verifier")


@pytest.mark.parametrize("workers", [0, 1])
def test_verify_groups_auto_leaves_hostile_rows_ungraded(marker, workers):
    out = verify_groups(hostile_groups(marker), task="auto", workers=workers)
    assert_nothing_ran(marker)
    for g in out[:-1]:
        r = g["responses"][0]
        assert r["score"] is None and r["correct"] is None
        assert repr(g["task"]) in r["meta"]["verify_detail"]
    good = out[-1]["responses"]
    assert [r["correct"] for r in good] == [True, False]


def test_verify_cli_auto_rejects_hostile_rows_with_reason(marker, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", hostile_groups(marker))
    out = tmp_path / "out.jsonl"
    assert main(["verify", str(src), "--out", str(out), "--task", "auto", "--workers", "0"]) == 0
    assert_nothing_ran(marker)
    written = [r for _, r in read_jsonl(out)]
    assert [r["id"] for r in written] == ["good"]
    assert [r["correct"] for r in written[0]["responses"]] == [True, False]
    rejects = [r for _, r in read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")]
    assert len(rejects) == len(HOSTILE_TASKS)
    for rej, task in zip(rejects, HOSTILE_TASKS, strict=True):
        assert repr(task) in rej["reason"] and rej["source"] == str(src)
        assert orjson.loads(rej["raw"])["task"] == task  # the rejected row is kept whole
    err = capsys.readouterr().err
    assert f"read {len(HOSTILE_TASKS) + 1}, written 1, rejected {len(HOSTILE_TASKS)}" in err


def test_verify_cli_user_given_plugin_still_runs(marker, tmp_path):
    rows = [{"id": "a", "prompt": "p", "answer": "yes", "task": "builtins:exec",
             "responses": [{"text": "yes"}, {"text": "no"}]}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    # the user's --task wins over the row's task field, and the user may name code
    assert main(["verify", str(src), "--out", str(out), "--task", "python:marker_plugin:grade",
                 "--workers", "0"]) == 0
    assert marker.read_text() == "imported\n"
    written = [r for _, r in read_jsonl(out)]
    assert [r["correct"] for r in written[0]["responses"]] == [True, False]


def test_user_registered_name_may_be_used_by_rows(marker, monkeypatch):
    monkeypatch.setattr("gradeset.verify.registry.VERIFIERS", dict(VERIFIERS))
    register_verifier("exact", "python:marker_plugin:grade")
    g = {"prompt": "p", "task": "exact", "answer": "yes", "responses": [{"text": "yes"}, {"text": "no"}]}
    out = verify_groups([g], task="auto", workers=0)
    assert [r["correct"] for r in out[0]["responses"]] == [True, False]
    assert marker.exists()


def test_register_verifier_refuses_names_that_look_like_targets(monkeypatch):
    monkeypatch.setattr("gradeset.verify.registry.VERIFIERS", dict(VERIFIERS))
    from gradeset.errors import GradesetError

    with pytest.raises(GradesetError):
        register_verifier("builtins:exec", "marker_plugin:grade")
    with pytest.raises(GradesetError):
        register_verifier("mine", "not_a_target")


def test_eval_plain_file_leaves_hostile_rows_ungraded(marker, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", hostile_groups(marker))
    metrics = tmp_path / "m.json"
    assert main(["eval", str(src), "--json", str(metrics), "--workers", "0"]) == 0
    assert_nothing_ran(marker)
    m = orjson.loads(metrics.read_bytes())
    flat = m.get("metrics", m)
    assert flat["n_graded"] == 2 and flat["n_correct"] == 1
    err = capsys.readouterr().err
    assert f"{len(HOSTILE_TASKS)} group(s) left ungraded" in err
    assert "'builtins:exec'" in err


def test_check_never_imports_row_tasks(marker, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", hostile_groups(marker))
    for g in hostile_groups(marker)[:-1]:
        assert g["responses"][0].get("score") is None
    code = main(["check", str(src), "--json", str(tmp_path / "c.json")])
    assert code in (0, 1)  # the data may fail checks (coverage); it must not run code
    assert_nothing_ran(marker)
    report = orjson.loads((tmp_path / "c.json").read_bytes())
    assert "builtins:exec" in orjson.dumps(report).decode()  # the tasks are reported as data


def test_reward_wrapper_scores_hostile_rows_none_and_warns_once(marker):
    reward = VerifierReward()  # defaults: the task comes from each row
    n = len(HOSTILE_TASKS)
    completions = [hostile_completion(marker)] * n + ["\\boxed{4}", "\\boxed{5}"]
    tasks = HOSTILE_TASKS + ["math", "math"]
    answers = ["pass"] * n + ["4", "4"]
    try:
        with pytest.warns(UserWarning, match="builtins:exec") as caught:
            scores = reward(prompts=["p"] * (n + 2), completions=completions, task=tasks, answer=answers)
        assert scores == [None] * n + [1.0, 0.0]
        assert_nothing_ran(marker)
        assert sum("'builtins:exec'" in str(w.message) for w in caught) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the second batch with the same names warns no more
            again = reward(prompts=["p"] * 2, completions=completions[:2], task=tasks[:2], answer=answers[:2])
        assert again == [None, None]
    finally:
        reward.close()
    assert_nothing_ran(marker)


def test_reward_wrapper_user_given_plugin_still_runs(marker):
    reward = VerifierReward("python:marker_plugin:grade", workers=0)
    try:
        # the row's task column is ignored when the caller chose the verifier
        assert reward(completions=["yes", "no"], answer=["yes", "yes"], task=["builtins:exec"] * 2) == [1.0, 0.0]
    finally:
        reward.close()
    assert marker.exists()


def test_pipeline_verify_auto_never_imports_row_tasks(marker, tmp_path):
    from gradeset.run.local import run_pipeline

    write_jsonl(tmp_path / "groups.jsonl", hostile_groups(marker))
    doc = {"source": {"path": "groups.jsonl"}, "steps": [{"verify": {"task": "auto", "workers": 0}}],
           "outputs": {"groups": "out/groups"}}
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(doc))
    summary = run_pipeline(p, progress=False)
    assert_nothing_ran(marker)
    rows = {r["id"]: r for f in sorted((tmp_path / "out" / "groups").glob("shard-*.jsonl"))
            for _, r in read_jsonl(f)}
    assert [r["correct"] for r in rows["good"]["responses"]] == [True, False]
    for i, task in enumerate(HOSTILE_TASKS):
        r = rows[f"bad{i}"]["responses"][0]
        assert r["correct"] is None and repr(task) in r["meta"]["verify_detail"]
    stats = {s["step"]: s for s in summary["steps"]}["verify"]["stats"]
    assert stats["rejected_tasks"] == len(HOSTILE_TASKS)


def test_get_verifier_from_python_is_the_users_choice(marker):
    v = get_verifier("python:marker_plugin:grade")
    assert v("a", "a").correct is True and marker.exists()


def test_verify_cli_strict_stops_at_a_data_named_target(marker, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", hostile_groups(marker))
    code = main(["verify", str(src), "--out", str(tmp_path / "o.jsonl"), "--task", "auto", "--workers", "0",
                 "--strict"])
    assert code == 2
    assert_nothing_ran(marker)
    err = capsys.readouterr().err
    assert "'builtins:exec'" in err and "Traceback" not in err


def test_judge_rubric_from_a_row_is_text_never_a_path(tmp_path):
    from gradeset.verify.judge import JudgeVerifier

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    prompt = JudgeVerifier(model="m").prompt("an answer", {"prompt": "q", "rubric": str(secret), "answer": "a"})
    assert str(secret) in prompt and "TOP-SECRET-CONTENT" not in prompt
