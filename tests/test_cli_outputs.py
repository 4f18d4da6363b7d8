"""Unwritable or clashing outputs: one clear line and exit 2 before any work, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradeset.cli import main

GROUPS = Path(__file__).parent / "data" / "run" / "groups.jsonl"


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("argv", [
    ["convert", str(GROUPS), "{bad}", "--to", "trl-prompt"],
    ["verify", str(GROUPS), "--out", "{bad}", "--task", "math"],
    ["synth", "arithmetic", "--out", "{bad}", "--n", "20"],
    ["build", "dpo", str(GROUPS), "--out", "{bad}"],
    ["check", str(GROUPS), "--report", "{bad}"],
    ["eval", str(GROUPS), "--json", "{bad}"],
])
@pytest.mark.parametrize("where", ["under_a_file", "under_proc"])
def test_outputs_that_cannot_be_created_fail_in_one_line(tmp_path, capsys, argv, where):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    bad = str(a_file / "out.jsonl") if where == "under_a_file" else "/proc/gradeset-no-such/out.jsonl"
    code, err = run(capsys, *[bad if a == "{bad}" else a for a in argv])
    assert code == 2
    line = [x for x in err.splitlines() if x.startswith("gradeset: error:")]
    assert len(line) == 1 and bad in line[0]
    if where == "under_a_file":
        assert f"{a_file} is a file" in line[0]
    assert a_file.read_text() == "x"


def test_report_pointing_at_a_folder_is_refused_before_checking(tmp_path, capsys):
    folder = tmp_path / "reports"
    folder.mkdir()
    code, err = run(capsys, "check", str(GROUPS), "--report", str(folder))
    assert code == 2 and f"--report {folder}: is a folder" in err
    assert list(folder.iterdir()) == []


def test_existing_plain_folder_as_out_is_refused_and_left_alone(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "shard-00000.jsonl").write_text('{"mine": 1}\n')  # a file the user put there
    code, err = run(capsys, "verify", str(GROUPS), "--out", str(folder), "--task", "math")
    assert code == 2 and "not a gradeset shard folder" in err and str(folder / "out.jsonl") in err
    assert (folder / "shard-00000.jsonl").read_text() == '{"mine": 1}\n'


def test_one_command_does_not_overwrite_another_commands_shards(tmp_path, capsys):
    out = tmp_path / "graded"
    assert run(capsys, "verify", str(GROUPS), "--out", str(out), "--task", "math")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = run(capsys, "build", "grpo", str(GROUPS), "--out", str(out))
    assert code == 2 and "holds the output of 'gradeset verify'" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # the same command may write there again (a re-run replaces its own output)
    assert run(capsys, "verify", str(GROUPS), "--out", str(out), "--task", "math")[0] == 0


def test_output_equal_to_input_is_refused(tmp_path, capsys):
    src = tmp_path / "g.jsonl"
    shutil.copy(GROUPS, src)
    code, err = run(capsys, "verify", str(src), "--out", str(src), "--task", "math")
    assert code == 2 and "would overwrite the input" in err
    assert src.read_bytes() == GROUPS.read_bytes()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare for a read-only mount")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro none {ro} || exit 77; "
              f"exec {sys.executable} -m gradeset verify {GROUPS} --out {ro}/graded.jsonl --task math")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    if proc.returncode == 77:
        pytest.skip("mount namespaces are not permitted here (needs root or user namespaces)")
    assert proc.returncode == 2, proc.stderr
    assert "read-only file system" in proc.stderr and "Traceback" not in proc.stderr


def test_temp_files_of_killed_runs_are_removed_by_the_next_write(tmp_path, capsys):
    out = tmp_path / "graded.jsonl"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs, like a kill -9-ed gradeset
    stale = tmp_path / f".graded.jsonl.tmp-{dead.pid}-abcd1234"
    stale.write_bytes(b"")
    live = tmp_path / f".graded.jsonl.tmp-{1}-live0000"  # pid 1 is alive: a concurrent writer's file stays
    live.write_bytes(b"")
    assert run(capsys, "verify", str(GROUPS), "--out", str(out), "--task", "math")[0] == 0
    assert not stale.exists() and live.exists() and out.exists()
