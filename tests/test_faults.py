"""The in-process runner under faults: kill -9 at random points, a full disk, inputs that change.

Each case ends by comparing with an uninterrupted run of the same pipeline: no row lost,
none duplicated, no half-written shard, exports identical.
"""

from __future__ import annotations

import os
import random
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


def pipeline(folder: Path, slow: float = 0.15, chunk: int = 20, touch: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(RUN_DATA / "groups.jsonl", folder / "groups.jsonl")
    slow_params: dict = {"seconds": slow}
    if touch:
        slow_params.update(touch=touch, touch_at=4)
    doc = {
        "source": {"path": "groups.jsonl"},
        # SlowStep stands in for generation (slow, per chunk), then grading, then a
        # whole-stream dedup and a filter after it: every part of the runner is exercised.
        "steps": [{"runsteps:SlowStep": slow_params}, {"verify": {"task": "math"}}, "runsteps:FirstSeen",
                  "runsteps:DropOdd"],
        "outputs": {"groups": "out/groups",
                    "exports": [{"path": "out/dpo.jsonl", "build": {"kind": "dpo"}},
                                {"path": "out/grpo.jsonl", "build": {"kind": "grpo"}}]},
        "run": {"chunk_size": chunk},
    }
    p = folder / "p.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def start(p: Path, *extra: str, preexec=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gradeset", "run", str(p), "-q", *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)


def run_to_end(p: Path, *extra: str, preexec=None) -> tuple[int, str]:
    proc = start(p, *extra, preexec=preexec)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def kill_repeatedly(p: Path, out: Path, rng: random.Random, tries: int, after: tuple[float, float]) -> int:
    """Start the pipeline and kill -9 it at a random moment, up to ``tries`` times (stopping
    early if a run finishes); after each kill no shard may be half written. Returns the kills."""
    kills = 0
    for _ in range(tries):
        proc = start(p)
        time.sleep(rng.uniform(*after))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        assert_no_half_shard(out)
    return kills


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
            code, err = run_to_end(pipeline(folder, slow=0.0, chunk=chunk))
            assert code == 0, err
            cache[chunk] = snapshot(folder)
        return cache[chunk]

    return get


def test_kill_9_at_random_points_then_resume_equals_uninterrupted(tmp_path, reference):
    p = pipeline(tmp_path, slow=0.1, chunk=10)  # 40 chunks x 0.1 s: five attempts cannot reach the end
    out = tmp_path / "out" / "groups"
    # after start-up, somewhere in slow step / verify / writing
    assert kill_repeatedly(p, out, random.Random(1234), tries=8, after=(0.5, 1.2)) >= 5
    code, err = run_to_end(p)
    assert code == 0, err
    assert snapshot(tmp_path) == reference(10)
    ids = [r["id"] for f in sorted(out.glob("shard-*.jsonl")) for _, r in read_jsonl(f)]
    assert len(ids) == len(set(ids))  # none duplicated
    assert not list(out.glob(".*.tmp-*"))  # stale temp files of killed runs were cleaned
    summary = orjson.loads((out / "run.json").read_bytes())
    assert summary["read"] == 400 and summary["steps"][0]["in"] == 400  # whole-run counts after resumes


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_gives_a_clear_error_and_a_resumable_state(tmp_path, reference):
    p = pipeline(tmp_path, slow=0.0, chunk=10)
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
    p = pipeline(tmp_path, slow=0.0, touch=str(tmp_path / "groups.jsonl"))
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
                  {"verify": {"task": "math"}}, "runsteps:FirstSeen"],
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
    pytest.importorskip("gradeset.generate.step")
    from loopback_server import LoopbackServer

    with LoopbackServer(reply=_answer) as fast:
        ref = generate_pipeline(tmp_path / "ref", fast.base_url)
        code, err = run_to_end(ref)
        assert code == 0, err
    with LoopbackServer(reply=_answer, latency=0.1) as slow:  # ~0.5 s per chunk of 20 prompts
        p = generate_pipeline(tmp_path / "killed", slow.base_url)
        out = tmp_path / "killed" / "out" / "groups"
        kills = kill_repeatedly(p, out, random.Random(99), tries=10, after=(0.6, 1.3))
        assert kills >= 5
        code, err = run_to_end(p)
        assert code == 0, err
        requests = len(slow.generation_requests())
    assert _content(out) == _content(tmp_path / "ref" / "out" / "groups")
    assert (tmp_path / "killed" / "out" / "dpo.jsonl").read_bytes() == (tmp_path / "ref" / "out" / "dpo.jsonl").read_bytes()
    # finished chunks were never generated again: at most the chunk in flight is redone per kill
    assert requests <= 200 + kills * 20
