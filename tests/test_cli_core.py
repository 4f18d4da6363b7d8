"""The command frame: exit codes, error lines, the shared Job bookkeeping, the step registry."""

from __future__ import annotations

import orjson
import pytest

from gradeset.cli import main
from gradeset.commands._common import Job
from gradeset.errors import GradesetError
from gradeset.steps import build_step, register_step, run_steps_on_batch


def test_no_command_is_bad_usage(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    # usage goes to stderr (stdout stays clean for data) and lists the commands
    assert captured.out == ""
    assert captured.err.startswith("usage: gradeset")
    for command in ("verify", "build", "check", "eval", "run"):
        assert f"    {command} " in captured.err


def test_job_counts_add_up_and_keeps_rejects(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"prompt": "a"}\n{"prompt": 5}\n{broken\n{"prompt": "b", "responses": []}\n')
    out = tmp_path / "out.jsonl"
    with Job(out, name="test") as job:
        groups = list(job.groups(src))
        job.written += len(groups)
    err = capsys.readouterr().err
    assert [g["prompt"] for g in groups] == ["a", "b"]
    assert job.read == 4 and job.rejected == 2 and job.written == 2
    assert "read 4, written 2, rejected 2" in err
    rejects = [orjson.loads(line) for line in (tmp_path / "out.jsonl.rejects.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == [2, 3]
    assert orjson.loads(rejects[0]["raw"]) == {"prompt": 5} and rejects[1]["raw"] == "{broken"
    assert "prompt: expected a string" in rejects[0]["reason"]


def test_job_strict_stops_at_first_bad_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"prompt": "a", "responses": []}\n{broken\n{"prompt": "b", "responses": []}\n')
    with pytest.raises(GradesetError, match=r"in.jsonl:2: .*--strict"), Job(tmp_path / "o.jsonl", strict=True) as job:
        list(job.groups(src))
    # the offending line is still kept in the reject file
    assert b"{broken" in (tmp_path / "o.jsonl.rejects.jsonl").read_bytes()


def test_job_empty_and_missing_inputs_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with Job(None) as job:
        with pytest.raises(GradesetError, match="empty"):
            list(job.groups(empty))
        with pytest.raises(GradesetError, match="no such file"):
            list(job.groups(tmp_path / "nope.jsonl"))


class Doubler:
    def __init__(self, field: str = "n"):
        self.field = field

    def __call__(self, batch):
        return [{**r, self.field: r[self.field] * 2} for r in batch]


def test_step_registry_builds_and_chains():
    register_step("double-test", f"{__name__}:Doubler")
    steps = [build_step("double-test", {"field": "n"}), build_step(f"{__name__}:Doubler")]
    assert run_steps_on_batch(steps, [{"n": 1}, {"n": 3}]) == [{"n": 4}, {"n": 12}]
    with pytest.raises(GradesetError, match="unknown step"):
        build_step("no-such-step")
    with pytest.raises(GradesetError, match="bad parameters"):
        build_step("double-test", {"nope": 1})


def test_job_limit_stops_reading_and_counts_what_was_read(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(b'{"prompt": "p%d", "responses": []}\n' % i for i in range(10)) + b"{bad\n")
    with Job(tmp_path / "o.jsonl", name="t") as job:
        got = [g["prompt"] for g in job.groups(src, limit=3)]
    assert got == ["p0", "p1", "p2"] and job.read == 3 and job.rejected == 0
    assert "after --limit 3" in capsys.readouterr().err
