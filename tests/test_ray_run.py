"""The Ray Data runner gives the same outputs as the in-process runner (one Ray session per module)."""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import orjson
import pytest
import yaml

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from gradeset.errors import GradesetError  # noqa: E402
from gradeset.io import read_manifest  # noqa: E402
from gradeset.io.readers import read_jsonl  # noqa: E402
from gradeset.run.local import run_pipeline  # noqa: E402

RUN_DATA = Path(__file__).parent / "data" / "run"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    # workers import the test-only steps from tests/data/run
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUN_DATA), old]))
    sys.path.insert(0, str(RUN_DATA))
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def rows_of(path: Path) -> list[dict]:
    if path.is_dir():
        return [r for f in sorted(path.glob("shard-*.jsonl")) for _, r in read_jsonl(f)]
    return [r for _, r in read_jsonl(path)]


def by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (str(r.get("id")), str(r)))


def _answer(req, choice: int) -> str:
    import re

    m = re.search(r"What is (-?\d+) \+ (-?\d+)\?", req.prompt_text)
    c = int(m.group(1)) + int(m.group(2)) if m else 0
    return f"So \\boxed{{{c if choice % 2 == 0 else c - 1}}}."


def _without_timings(rows: list[dict]) -> list[dict]:
    for g in rows:
        for r in g.get("responses") or []:
            r.get("meta", {}).pop("generation_time_ms", None)
    return rows


def test_ray_and_local_write_identical_shards_with_generation(tmp_path):
    """generate (HTTP backend, from Ray actors) -> verify -> filter -> dedup: same shards, counts, pairs."""
    from loopback_server import LoopbackServer

    with LoopbackServer(reply=_answer) as srv:
        doc = {
            "source": {"path": "prompts.jsonl", "layout": "group"},
            "steps": [{"generate": {"backend": "openai", "base_url": srv.base_url, "model": "m", "n": 2,
                                    "temperature": 0.0, "concurrency": 8}},
                      {"verify": {"task": "math"}}, {"runsteps:DropOdd": {}, "ray": {"num_cpus": 0.25}},
                      "runsteps:FirstSeen"],
            "outputs": {"groups": "out/groups", "exports": [{"path": "out/dpo.jsonl", "build": {"kind": "dpo"}}]},
            "run": {"chunk_size": 25},
        }
        results = {}
        for runner in ("local", "ray"):
            folder = tmp_path / runner
            folder.mkdir()
            with open(folder / "prompts.jsonl", "wb") as fh:
                for _, r in list(read_jsonl(RUN_DATA / "groups.jsonl"))[:200]:
                    fh.write(orjson.dumps({"prompt": r["prompt"], "answer": r["answer"], "n": r["n"]}) + b"\n")
            (folder / "p.yaml").write_text(yaml.safe_dump(doc))
            summary = run_pipeline(folder / "p.yaml", runner=runner, progress=False)
            out = folder / "out" / "groups"
            names = [s["name"] for s in read_manifest(out)["shards"]]
            assert names == [f"shard-{i:05d}.jsonl" for i in range(8)]
            results[runner] = (summary, {n: _without_timings(rows_of_file(out / n)) for n in names},
                               (folder / "out" / "dpo.jsonl").read_bytes())
    (ls, lshards, ldpo), (rs, rshards, rdpo) = results["local"], results["ray"]
    assert rshards == lshards  # same chunk -> shard mapping and rows in the same order
    assert rdpo == ldpo and ldpo
    assert all(len(g["responses"]) == 2 for rows in rshards.values() for g in rows)
    assert rs["runner"] == "ray" and rs["written"] == ls["written"] > 0
    # per-step counts gathered from the Ray actors equal the in-process ones
    assert [(s["step"], s["in"], s["out"], s["stats"]) for s in rs["steps"]] == \
           [(s["step"], s["in"], s["out"], s["stats"]) for s in ls["steps"]]
    # 200 prompts x 2 samples; a prompt repeated in a later chunk reuses its samples (same key)
    st = rs["steps"][0]["stats"]
    assert st["generated"] + st.get("cached", 0) == 400 and st["generated"] >= 300, st


def rows_of_file(path: Path) -> list[dict]:
    return [r for _, r in read_jsonl(path)]


TIMINGS = ("generation_time_ms", "batch_time_ms")


def without_timings(row: dict) -> dict:
    """The row with its samples' wall-clock timings left out: they differ run to run, nothing else may."""
    if not row.get("responses"):
        return row
    return {**row, "responses": [{**r, "meta": {k: v for k, v in (r.get("meta") or {}).items() if k not in TIMINGS}}
                                 for r in row["responses"]]}


def test_quickstart_same_outputs_on_both_runners(tmp_path):
    qs = EXAMPLES / "quickstart.yaml"
    assert qs.exists(), "examples/quickstart.yaml is part of gradeset's examples"
    doc = yaml.safe_load(qs.read_text())
    outputs = {}
    for runner in ("local", "ray"):
        folder = tmp_path / runner / "examples"  # outputs go to ../out, inside tmp_path/runner
        folder.mkdir(parents=True)
        shutil.copy(qs, folder / "quickstart.yaml")
        summary = run_pipeline(folder / "quickstart.yaml", runner=runner, progress=False)
        assert summary["written"] > 0
        files = {"groups": (folder / doc["outputs"]["groups"]).resolve()}
        for e in doc["outputs"].get("exports", []):
            files[e["path"]] = (folder / e["path"]).resolve()
        assert all(str(f).startswith(str(tmp_path / runner)) for f in files.values())
        outputs[runner] = {k: by_id([without_timings(r) for r in rows_of(v)]) for k, v in files.items()}
    assert outputs["ray"] == outputs["local"]
    assert all(outputs["local"][k] for k in outputs["local"])


def test_ray_run_resumes_after_a_failed_step(tmp_path):
    flag = tmp_path / "crash.flag"
    flag.write_text("armed")
    doc = {
        "source": {"path": "groups.jsonl"},
        "steps": [{"verify": {"task": "math"}}, {"runsteps:Crash": {"at": 4, "flag": str(flag)}},
                  "runsteps:DropOdd"],
        "outputs": {"groups": "out/groups"},
        "run": {"chunk_size": 50, "ray_task_groups": 100},  # 2 chunks per Ray task: chunk 3 is a batch's second
    }
    for name in ("ray", "local"):
        (tmp_path / name).mkdir()
        shutil.copy(RUN_DATA / "groups.jsonl", tmp_path / name)
        (tmp_path / name / "p.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(GradesetError, match=r"on a Ray worker: steps\[1\] runsteps:Crash failed on chunk 3: .*boom"):
        run_pipeline(tmp_path / "ray" / "p.yaml", runner="ray", progress=False)
    out = tmp_path / "ray" / "out" / "groups"
    m = read_manifest(out)
    assert not m["complete"] and len(m["shards"]) < 8
    assert len(m["shards"]) == 3  # every chunk before the failing one is written (in order)
    flag.unlink()
    summary = run_pipeline(tmp_path / "ray" / "p.yaml", runner="ray", progress=False)
    assert summary["resumed"] and summary["chunks_skipped_on_resume"] == len(m["shards"])
    run_pipeline(tmp_path / "local" / "p.yaml", runner="local", progress=False)
    local = tmp_path / "local" / "out" / "groups"
    assert {f.name: f.read_bytes() for f in out.glob("shard-*.jsonl")} == \
           {f.name: f.read_bytes() for f in local.glob("shard-*.jsonl")}


WHOLE_STREAM = [{"verify": {"task": "math"}}, {"dedup": {"method": "exact"}},
                {"dedup": {"method": "near", "threshold": 0.9}},
                {"balance": {"bucket_caps": {"mixed": 40, "all-correct": 25}}},
                {"sample": {"n": 60, "seed": 1}},
                {"check": {"group_size": 2, "disable": ["near_duplicates"], "json": "out/stage.json"}}]


def _no_rows_on_the_driver(monkeypatch):
    """From here on, this process (the driver) fails if it reads the source, hashes it, runs a
    step on rows or writes a shard with rows: the Ray runner must do all of it on workers."""
    import gradeset.formats
    import gradeset.io.shards
    from gradeset.check.checks import CheckRunner
    from gradeset.check.step import CheckStep
    from gradeset.io.writers import JsonlWriter
    from gradeset.shape.balance import BalanceStep
    from gradeset.shape.dedup import DedupStep
    from gradeset.shape.select import SampleStep
    from gradeset.verify.step import VerifyStep

    def refuse(*a, **k):
        raise AssertionError("rows on the driver")

    monkeypatch.setattr(gradeset.formats, "read_groups", refuse)
    monkeypatch.setattr(gradeset.io.shards, "sha256_file", refuse)  # input checksums: a Ray task
    monkeypatch.setattr(VerifyStep, "__call__", refuse)
    monkeypatch.setattr(CheckRunner, "add", refuse)  # outputs.check: workers read the shards back
    for cls in (DedupStep, BalanceStep, SampleStep, CheckStep):
        monkeypatch.setattr(cls, "process", refuse)
    real_write = JsonlWriter.write

    def write(self, rows):
        rows = list(rows)
        if rows:
            refuse()
        return real_write(self, rows)

    monkeypatch.setattr(JsonlWriter, "write", write)


def test_whole_stream_steps_on_workers_equal_in_process(tmp_path, monkeypatch):
    """verify -> exact dedup -> near dedup -> balance (caps) -> sample -> check: the Ray run keeps
    the rows the in-process run keeps, with the same counts and stage report, and the driver
    process never reads, processes or writes a row."""
    doc = {"source": {"path": "groups.jsonl"}, "steps": WHOLE_STREAM,
           "outputs": {"groups": "out/groups", "check": {"json": "out/check.json", "report": "out/check.html",
                                                        "examples": 3, "near_duplicate_threshold": 0.5}},
           "run": {"chunk_size": 64}}
    summaries, rows, stage, final = {}, {}, {}, {}
    for runner in ("local", "ray"):
        (tmp_path / runner).mkdir()
        shutil.copy(RUN_DATA / "groups.jsonl", tmp_path / runner)
        (tmp_path / runner / "p.yaml").write_text(yaml.safe_dump(doc))
        if runner == "ray":
            _no_rows_on_the_driver(monkeypatch)
        summaries[runner] = run_pipeline(tmp_path / runner / "p.yaml", runner=runner, progress=False)
        monkeypatch.undo()
        rows[runner] = by_id(rows_of(tmp_path / runner / "out" / "groups"))
        stage[runner] = orjson.loads((tmp_path / runner / "out" / "stage.json").read_bytes())
        final[runner] = orjson.loads((tmp_path / runner / "out" / "check.json").read_bytes())
    assert rows["ray"] == rows["local"] and 0 < len(rows["local"]) <= 60
    ls, rs = summaries["local"], summaries["ray"]
    assert (rs["read"], rs["rejected"], rs["written"]) == (ls["read"], ls["rejected"], ls["written"])
    assert [(s["step"], s["in"], s["out"], s["rows"]) for s in rs["steps"]] == \
           [(s["step"], s["in"], s["out"], s["rows"]) for s in ls["steps"]]
    assert stage["ray"]["stats"] == stage["local"]["stats"] and stage["ray"]["failed"] == stage["local"]["failed"]
    # outputs.check, computed by workers over the written shards, is the driver's report
    for key in ("stats", "failed", "passed", "stages", "checks"):
        assert final["ray"].get(key) == final["local"].get(key), key
    assert final["local"]["stats"]["groups"] == len(rows["local"]) and rs["check"]["json"].endswith("check.json")
    m = read_manifest(tmp_path / "ray" / "out" / "groups")
    assert m["complete"] and m["rows"] == len(rows["ray"]) and len(m["shards"]) == rs["shards"]
    from gradeset.io.atomic import sha256_file

    assert [i["sha256"] for i in m["inputs"]] == [sha256_file(tmp_path / "ray" / "groups.jsonl")]


def test_bad_source_lines_are_rejected_on_workers_as_in_process(tmp_path):
    """The source is read on a worker: the same lines are rejected, at the same file:line, and
    read = rejected + groups; --strict stops at the first bad line on both runners."""
    from gradeset.io import rejects_path_for

    good = (RUN_DATA / "groups.jsonl").read_bytes().splitlines(keepends=True)[:150]
    bad = [b"{not json\n", b"[1, 2]\n", b'{"prompt": 3, "responses": "x"}\n', b"\xff\xfe\n"]
    lines = [line for i, g in enumerate(good) for line in ([g, bad[i % 4]] if i % 37 == 5 else [g])]
    doc = {"source": {"path": "groups.jsonl"}, "steps": [{"verify": {"task": "math"}}, {"dedup": {"method": "exact"}}],
           "outputs": {"groups": "out/groups"}, "run": {"chunk_size": 40}}
    got = {}
    for runner in ("local", "ray"):
        (tmp_path / runner).mkdir()
        (tmp_path / runner / "groups.jsonl").write_bytes(b"".join(lines))
        (tmp_path / runner / "p.yaml").write_text(yaml.safe_dump(doc))
        s = run_pipeline(tmp_path / runner / "p.yaml", runner=runner, progress=False, stream=io.StringIO())
        out = tmp_path / runner / "out" / "groups"
        rejects = [orjson.loads(line) for line in rejects_path_for(out).read_bytes().splitlines()]
        got[runner] = (s["read"], s["rejected"], s["written"],
                       [(Path(r["source"]).name, r["line"], r["reason"], r["raw"]) for r in rejects],
                       by_id(rows_of(out)))
        with pytest.raises(GradesetError, match="--strict"):
            run_pipeline(tmp_path / runner / "p.yaml", runner=runner, progress=False, strict=True, resume=False,
                         stream=io.StringIO())
    assert got["ray"] == got["local"]
    read, rejected, _, rejects, _ = got["ray"]
    assert rejected == len(rejects) == 4 and read == 150 + rejected


def test_a_source_error_on_the_reading_worker_is_the_in_process_error(tmp_path):
    """Every line bad: the worker's reader fails as the in-process one does (its own message,
    no Ray traceback), and the reject file still holds every bad line."""
    from gradeset.io import rejects_path_for

    msgs = {}
    for runner in ("local", "ray"):
        (tmp_path / runner).mkdir()
        (tmp_path / runner / "groups.jsonl").write_bytes(b"{bad\n[1]\nnot json\n")
        (tmp_path / runner / "p.yaml").write_text(yaml.safe_dump(
            {"source": {"path": "groups.jsonl"}, "steps": [{"verify": {"task": "math"}}],
             "outputs": {"groups": "out/groups"}}))
        with pytest.raises(GradesetError) as err:
            run_pipeline(tmp_path / runner / "p.yaml", runner=runner, progress=False, stream=io.StringIO())
        rejects = rejects_path_for(tmp_path / runner / "out" / "groups").read_bytes()
        msgs[runner] = (type(err.value).__name__, str(err.value).replace(str(tmp_path / runner), "X"),
                        rejects.replace(str(tmp_path / runner).encode(), b"X"))
    assert msgs["ray"] == msgs["local"] and "no readable record" in msgs["local"][1]
    assert msgs["ray"][2].count(b"\n") == 3


def test_ray_run_with_whole_stream_steps_resumes_from_worker_checkpoints(tmp_path):
    """A prefix step fails at chunk 3: chunks 0-2 are checkpointed by workers; the re-run
    reloads them (verify does not grade them again), and every shard equals the in-process
    run's, byte for byte (FirstSeen filters, so each row stays in its chunk's shard)."""
    flag = tmp_path / "crash.flag"
    flag.write_text("armed")
    doc = {"source": {"path": "groups.jsonl"},
           "steps": [{"verify": {"task": "math"}}, {"runsteps:Crash": {"at": 4, "flag": str(flag)}},
                     "runsteps:FirstSeen", "runsteps:DropOdd"],
           "outputs": {"groups": "out/groups"}, "run": {"chunk_size": 50, "ray_task_groups": 100}}
    for name in ("ray", "local"):
        (tmp_path / name).mkdir()
        shutil.copy(RUN_DATA / "groups.jsonl", tmp_path / name)
        (tmp_path / name / "p.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(GradesetError, match=r"steps\[1\] runsteps:Crash failed on chunk 3"):
        run_pipeline(tmp_path / "ray" / "p.yaml", runner="ray", progress=False)
    work = tmp_path / "ray" / "out" / "groups" / ".work" / "prefix"
    assert len(read_manifest(work)["shards"]) == 3
    flag.unlink()
    summary = run_pipeline(tmp_path / "ray" / "p.yaml", runner="ray", progress=False)
    assert summary["steps"][0]["this_run"]["graded"] == 5 * 50 * 2  # chunks 3-7 only, 2 responses each
    run_pipeline(tmp_path / "local" / "p.yaml", runner="local", progress=False)
    out, local = tmp_path / "ray" / "out" / "groups", tmp_path / "local" / "out" / "groups"
    assert {f.name: f.read_bytes() for f in out.glob("shard-*.jsonl")} == \
           {f.name: f.read_bytes() for f in local.glob("shard-*.jsonl")}
    assert read_manifest(out)["complete"] and not work.exists()
