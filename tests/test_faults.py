"""The in-process runner under faults: kill -9 at chosen points, a full disk, inputs that change.

Each case ends by comparing with an uninterrupted run of the same pipeline: no row lost,
none duplicated, no half-written shard, exports identical. The pipelines have no dedup
step (a dedup would hide a row replayed twice on resume); their whole-stream step numbers
every row instead, so a duplicate or a lost row changes the output. Kills happen at points
chosen from progress: a step (or the loopback server) holds after N chunks (requests) and
says so through a file or an event; the test waits for that, then kills.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from gradeset.io import read_manifest
from gradeset.io.atomic import sha256_file
from gradeset.io.readers import read_jsonl

RUN_DATA = Path(__file__).parent / "data" / "run"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(RUN_DATA), os.environ.get("PYTHONPATH")])),
           GRADESET_NO_PROGRESS="1")


def pipeline(folder: Path, chunk: int = 20, touch: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(RUN_DATA / "groups.jsonl", folder / "groups.jsonl")
    steps: list = [{"runsteps:Hold": {"name": "prefix"}}]
    if touch:
        steps.append({"runsteps:SlowStep": {"seconds": 0.0, "touch": touch, "touch_at": 4}})
    # prefix (checkpointed per chunk): hold point, grading; middle: a whole-stream step that
    # keeps and numbers every row; tail: another hold point and a filter
    steps += [{"verify": {"task": "math"}}, "runsteps:Numbered", {"runsteps:Hold": {"name": "tail"}},
              "runsteps:DropOdd"]
    doc = {
        "source": {"path": "groups.jsonl"},
        "steps": steps,
        "outputs": {"groups": "out/groups",
                    "exports": [{"path": "out/dpo.jsonl", "build": {"kind": "dpo"}},
                                {"path": "out/grpo.jsonl", "build": {"kind": "grpo"}}]},
        "run": {"chunk_size": chunk},
    }
    p = folder / "p.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def start(p: Path, *extra: str, preexec=None, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gradeset", "run", str(p), "-q", *extra], env={**ENV, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)


def run_to_end(p: Path, *extra: str, preexec=None) -> tuple[int, str]:
    proc = start(p, *extra, preexec=preexec)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err.decode()


def wait_for(condition, proc: subprocess.Popen, what: str, deadline_s: float = 120.0) -> None:
    """Poll condition until it holds; fail (with the run's stderr) if the run ends or time runs out."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)  # polling interval of a condition, not a guess at how long work takes


def kill_at(p: Path, out: Path, hold: str, at: int, flag: Path) -> None:
    """Run until the ``hold`` step's ``at``-th call in this run, kill -9 there, check the shards."""
    flag.unlink(missing_ok=True)
    proc = start(p, env={f"RUNSTEPS_HOLD_{hold.upper()}": f"{at}:{flag}"})
    try:
        wait_for(flag.exists, proc, f"the {hold} hold point {at}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert_no_half_shard(out)


def finished_shards(out: Path) -> int:
    m = read_manifest(out)
    return 0 if m is None else len(m["shards"])


def assert_no_half_shard(out: Path) -> None:
    """Every visible shard parses completely; every manifest entry matches its file."""
    for f in out.glob("shard-*.jsonl"):
        data = f.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{f} is cut"
        for line in data.splitlines():
            orjson.loads(line)
    m = read_manifest(out)
    if m is not None:
        for s in m["shards"]:
            assert sha256_file(out / s["name"]) == s["sha256"]


def snapshot(folder: Path) -> dict[str, bytes]:
    out = folder / "out"
    files = sorted(out.glob("groups/shard-*.jsonl")) + [out / "dpo.jsonl", out / "grpo.jsonl"]
    return {f.name: f.read_bytes() for f in files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Outputs of an uninterrupted run, per chunk size."""
    cache: dict[int, dict[str, bytes]] = {}

    def get(chunk: int = 20) -> dict[str, bytes]:
        if chunk not in cache:
            folder = tmp_path_factory.mktemp(f"reference-{chunk}")
            code, err = run_to_end(pipeline(folder, chunk=chunk))
            assert code == 0, err
            cache[chunk] = snapshot(folder)
        return cache[chunk]

    return get


# (hold point, call in that run): in the prefix (a chunk half graded, its checkpoint not yet
# written) and in the tail (the chunk's rows numbered, its shard not yet written), early and late
KILL_POINTS = [("prefix", 3), ("tail", 2), ("prefix", 1), ("tail", 5), ("prefix", 6), ("tail", 1), ("prefix", 2)]


def test_kill_9_at_chosen_points_then_resume_equals_uninterrupted(tmp_path, reference):
    p = pipeline(tmp_path, chunk=10)  # 40 chunks; the kill points below use well under half
    out = tmp_path / "out" / "groups"
    done = []
    for hold, at in KILL_POINTS:
        kill_at(p, out, hold, at, tmp_path / "held")
        done.append(finished_shards(out))
    assert done == sorted(done) and 0 < done[-1] < 40  # progress kept across kills, run not finished
    assert len(list((out / ".work" / "prefix").glob("shard-*.jsonl"))) > done[-1]  # checkpoints ahead of shards
    code, err = run_to_end(p)
    assert code == 0, err
    assert snapshot(tmp_path) == reference(10)
    rows = [r for f in sorted(out.glob("shard-*.jsonl")) for _, r in read_jsonl(f)]
    # none lost, none duplicated: every kept source row (even n) once, numbered by its stream position
    assert [(r["n"], r["seq"]) for r in rows] == [(2 * i, 2 * i) for i in range(200)]
    assert not list(out.glob(".*.tmp-*"))  # stale temp files of killed runs were cleaned
    summary = orjson.loads((out / "run.json").read_bytes())
    assert summary["read"] == 400 and summary["steps"][0]["in"] == 400  # whole-run counts after resumes


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_gives_a_clear_error_and_a_resumable_state(tmp_path, reference):
    p = pipeline(tmp_path, chunk=10)
    out = tmp_path / "out" / "groups"
    # shards are ~2 KB; the manifest and the run state grow by an entry per chunk, so the
    # limit is hit part way through the run
    code, err = run_to_end(p, preexec=_limit_file_size(4000))
    assert code == 2, err
    assert "gradeset: error:" in err and "File too large" in err and "re-run the same command to resume" in err
    assert "Traceback" not in err
    m = read_manifest(out)
    assert m is not None and not m["complete"] and 0 < len(m["shards"]) < 50
    assert_no_half_shard(out)
    code, err = run_to_end(p)
    assert code == 0, err
    assert snapshot(tmp_path) == reference(10)


def test_input_modified_during_the_run_is_detected(tmp_path):
    p = pipeline(tmp_path, touch=str(tmp_path / "groups.jsonl"))
    code, err = run_to_end(p)
    assert code == 2
    assert "input changed during the run" in err and "groups.jsonl" in err
    m = read_manifest(tmp_path / "out" / "groups")
    assert not m["complete"]
    code, err = run_to_end(p)  # resuming on top of the old content is refused
    assert code == 2 and "changed since" in err and "--fresh" in err


def _answer(req, choice: int) -> str:
    """Deterministic replies: even choices right, odd ones off by one (a real grading task)."""
    import re

    m = re.search(r"What is (-?\d+) \+ (-?\d+)\?", req.prompt_text)
    c = int(m.group(1)) + int(m.group(2)) if m else 0
    return f"Adding gives \\boxed{{{c if choice % 2 == 0 else c + 1}}}."


def generate_pipeline(folder: Path, base_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "prompts.jsonl", "wb") as fh:
        for _, r in list(read_jsonl(RUN_DATA / "groups.jsonl"))[:200]:
            fh.write(orjson.dumps({"prompt": r["prompt"], "answer": r["answer"], "n": r["n"]}) + b"\n")
    doc = {
        "source": {"path": "prompts.jsonl", "layout": "group"},
        "steps": [{"generate": {"backend": "openai", "base_url": base_url, "model": "loopback", "n": 2,
                                "temperature": 0.0, "concurrency": 4, "retries": 0}},
                  {"verify": {"task": "math"}}, "runsteps:Numbered"],
        "outputs": {"groups": "out/groups", "exports": [{"path": "out/dpo.jsonl", "build": {"kind": "dpo"}}]},
        "run": {"chunk_size": 20},
    }
    (folder / "p.yaml").write_text(yaml.safe_dump(doc))
    return folder / "p.yaml"


def _content(out: Path) -> list[tuple]:
    """Shard rows without timings (generation_time_ms differs between runs)."""
    rows = []
    for f in sorted(out.glob("shard-*.jsonl")):
        for _, g in read_jsonl(f):
            rows.append((f.name, g["id"], tuple((r["text"], r["score"], r["correct"], r["meta"]["sample_index"])
                                               for r in g["responses"])))
    return rows


def test_kill_9_during_generation_against_a_loopback_server(tmp_path):
    from loopback_server import LoopbackServer

    with LoopbackServer(reply=_answer) as fast:
        ref = generate_pipeline(tmp_path / "ref", fast.base_url)
        code, err = run_to_end(ref)
        assert code == 0, err
    conc, per_chunk = 4, 20  # generate's concurrency; prompts per chunk (n=2 in one request each)
    with LoopbackServer(reply=_answer) as srv:
        p = generate_pipeline(tmp_path / "killed", srv.base_url)
        out = tmp_path / "killed" / "out" / "groups"
        kills = 0
        # answer exactly N more requests, then hold every answer: the run gets no further, and
        # the kill lands mid-chunk or on a chunk boundary, at a point chosen from progress
        for answered in (30, 20, 7, 45, 13):
            srv.hold_after(answered)
            proc = start(p)
            try:
                wait_for(lambda: srv.held >= 1, proc, f"a held request after {answered} answers")
            finally:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                srv.release()
            kills += 1
            assert_no_half_shard(out)
        assert finished_shards(out) < 10  # 200 prompts in chunks of 20: the kills came before the end
        code, err = run_to_end(p)
        assert code == 0, err
        requests = len(srv.generation_requests())
    assert _content(out) == _content(tmp_path / "ref" / "out" / "groups")
    assert (tmp_path / "killed" / "out" / "dpo.jsonl").read_bytes() == (tmp_path / "ref" / "out" / "dpo.jsonl").read_bytes()
    # finished chunks were never generated again: at most the chunk in flight is redone per kill
    assert requests <= 200 + kills * (per_chunk + conc)
