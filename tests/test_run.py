"""The YAML pipeline loader and the in-process runner: parse errors, a run end to end, resume."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from gradeset.cli import main
from gradeset.errors import GradesetError
from gradeset.io import read_manifest
from gradeset.io.readers import read_jsonl
from gradeset.run.local import prepare, run_pipeline
from gradeset.run.pipeline import PipelineError, load_pipeline

RUN_DATA = Path(__file__).parent / "data" / "run"
sys.path.insert(0, str(RUN_DATA))  # the test-only steps (runsteps:...) are imported in-process


def source_rows() -> list[dict]:
    return [r for _, r in read_jsonl(RUN_DATA / "groups.jsonl")]


def write_pipeline(folder: Path, doc: dict, name: str = "p.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "groups.jsonl").exists():
        shutil.copy(RUN_DATA / "groups.jsonl", folder / "groups.jsonl")
    p = folder / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def base_doc(**over) -> dict:
    doc = {
        "source": {"path": "groups.jsonl"},
        "steps": [{"verify": {"task": "math"}}, "runsteps:FirstSeen", "runsteps:DropOdd"],
        "outputs": {"groups": "out/groups",
                    "exports": [{"path": "out/dpo.jsonl", "build": {"kind": "dpo", "strategy": "correct-vs-incorrect"}},
                                {"path": "out/grpo.jsonl", "build": {"kind": "grpo"}}]},
        "run": {"chunk_size": 64},
    }
    doc.update(over)
    return doc


def shard_rows(folder: Path) -> list[dict]:
    rows = []
    for f in sorted(folder.glob("shard-*.jsonl")):
        rows += [r for _, r in read_jsonl(f)]
    return rows


def expected_ids() -> list[str]:
    """What FirstSeen + DropOdd must keep: the first row per prompt, then even ``n`` only."""
    from gradeset.records import ensure_id

    seen, out = set(), []
    for r in source_rows():
        if r["prompt"] in seen:
            continue
        seen.add(r["prompt"])
        if r["n"] % 2 == 0:
            out.append(ensure_id(dict(r))["id"])
    return out


# ------------------------------------------------------------------------------ parse errors


@pytest.mark.parametrize("change, key", [
    ({"outptus": {}}, "outptus: unknown key"),
    ({"outputs": None}, "outputs"),
    ({"steps": ["verify", "no-such-step"]}, "steps[1]: unknown step 'no-such-step'"),
    ({"steps": [{"verify": {"task": "math"}, "dedup": {}}]}, "exactly one step name"),
    ({"steps": [{"verify": ["task"]}]}, "parameters must be a mapping"),
    ({"source": {"path": "groups.jsonl", "synth": "arithmetic"}}, "source: give exactly one of 'path'"),
    ({"source": {"path": "groups.jsonl", "colour": 1}}, "unknown keys for a file source"),
    ({"run": {"chunk_size": 0}}, "run.chunk_size"),
    ({"outputs": {"groups": "o", "exports": [{"path": "x.jsonl", "layout": "nope"}]}},
     "outputs.exports[0].layout: unknown layout 'nope'"),
    ({"outputs": {"groups": "o", "exports": [{"path": "x.jsonl", "build": {"kind": "dpo", "stratgy": "x"}}]}},
     "outputs.exports[0].build: unknown option(s) ['stratgy']"),
    ({"outputs": {"groups": "o", "exports": [{"path": "x.jsonl", "build": {"kind": "ppo"}}]}},
     "outputs.exports[0].build.kind"),
    ({"outputs": {"groups": {"path": "o", "format": "csv"}}}, "outputs.groups.format"),
])
def test_parse_errors_name_the_yaml_key(tmp_path, change, key):
    p = write_pipeline(tmp_path, base_doc(**change))
    with pytest.raises(PipelineError) as exc:
        load_pipeline(p)
    assert key in str(exc.value)
    assert str(p) in str(exc.value)


def test_step_construction_errors_name_the_step(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=[{"dedup": {"methd": "exact"}}]))
    with pytest.raises(PipelineError, match=r"steps\[0\]\.dedup: .*methd"):
        prepare(p)


def test_missing_source_file_and_bad_yaml(tmp_path):
    p = write_pipeline(tmp_path, base_doc(source={"path": "nope.jsonl"}))
    with pytest.raises(PipelineError, match="source.path: .*nope.jsonl: no such file"):
        prepare(p)
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_pipeline(bad)
    assert main(["run", str(bad)]) == 2


def test_paths_resolve_against_the_yaml_folder(tmp_path, monkeypatch):
    p = write_pipeline(tmp_path / "proj", base_doc(
        steps=[{"decontaminate": {"benchmarks": "bench.jsonl"}}]))
    (tmp_path / "proj" / "bench.jsonl").write_text('{"question": "What is 1 + 2?", "answer": "3"}\n')
    monkeypatch.chdir(tmp_path)  # a different working directory
    plan = prepare(p)
    assert plan.out == (tmp_path / "proj" / "out" / "groups").resolve()
    assert plan.specs[0].params["benchmarks"] == str((tmp_path / "proj" / "bench.jsonl").resolve())
    # the benchmark file is an input of the run: its checksum goes in the manifest
    assert str((tmp_path / "proj" / "bench.jsonl").resolve()) in plan.inputs


# ------------------------------------------------------------------------------ a run end to end


def test_run_end_to_end_counts_shards_and_exports(tmp_path):
    p = write_pipeline(tmp_path, base_doc())
    summary = run_pipeline(p, progress=False)
    out = tmp_path / "out" / "groups"
    rows = shard_rows(out)
    assert [r["id"] for r in rows] == expected_ids()
    # every response graded by the verifier: the right sum is correct, the off-by-one is not
    assert all(r["responses"][0]["correct"] is True and r["responses"][1]["correct"] is False for r in rows)
    n_src = len(source_rows())
    assert summary["read"] == n_src and summary["written"] == len(rows)
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["verify"]["in"] == n_src and steps["verify"]["stats"]["graded"] == 2 * n_src
    assert steps["runsteps:FirstSeen"]["kind"] == "stream"
    dropped = sum(s["in"] - s["out"] for s in summary["steps"])
    assert summary["read"] == summary["written"] + summary["rejected"] + dropped
    # chunk k -> shard k: ceil(400 / 64) shards, named deterministically
    m = read_manifest(out)
    assert m["complete"] and [s["name"] for s in m["shards"]] == [f"shard-{i:05d}.jsonl" for i in range(7)]
    assert m["inputs"][0]["path"] == str((tmp_path / "groups.jsonl").resolve())
    assert m["parameters"]["pipeline"]["steps"][0] == {"verify": {"task": "math"}}
    saved = orjson.loads((out / "run.json").read_bytes())
    assert saved["steps"] == summary["steps"]
    dpo = [r for _, r in read_jsonl(tmp_path / "out" / "dpo.jsonl")]
    assert len(dpo) == len(rows) and all(set(r) >= {"prompt", "chosen", "rejected"} for r in dpo)
    assert all("\\boxed" in r["chosen"] and r["chosen"] != r["rejected"] for r in dpo)
    grpo = [r for _, r in read_jsonl(tmp_path / "out" / "grpo.jsonl")]
    assert [g["answer"] for g in grpo] == [r["answer"] for r in rows] and "responses" not in grpo[0]
    assert not (out / ".work").exists()


def test_cli_prints_per_step_counts(tmp_path, capsys):
    p = write_pipeline(tmp_path, base_doc())
    assert main(["run", str(p), "-q"]) == 0
    err = capsys.readouterr().err
    assert "verify" in err and "runsteps:FirstSeen" in err
    assert f"read 400, written {len(expected_ids())} groups in 7 shards" in err
    assert main(["run", str(p), "--check-only"]) == 0


def test_bad_source_lines_go_to_the_reject_file(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=[]))
    with open(tmp_path / "groups.jsonl", "ab") as fh:
        fh.write(b'{"prompt": "truncated\n')
    summary = run_pipeline(p, progress=False)
    assert summary["rejected"] == 1 and summary["written"] == 400 and summary["read"] == 401
    rej = [r for _, r in read_jsonl(tmp_path / "out" / "groups.rejects.jsonl")]
    assert rej[0]["line"] == 401 and "truncated" in rej[0]["raw"]


# ------------------------------------------------------------------------------ resume


def test_resume_after_a_crash_redoes_only_unfinished_chunks(tmp_path, monkeypatch):
    doc = base_doc(steps=[{"verify": {"task": "math"}}, {"runsteps:Crash": {"at": 4}}, "runsteps:FirstSeen",
                          "runsteps:DropOdd"])
    p = write_pipeline(tmp_path, doc)
    out = tmp_path / "out" / "groups"
    monkeypatch.setenv("RUNSTEPS_CRASH", "1")
    with pytest.raises(GradesetError, match=r"steps\[1\] runsteps:Crash failed on chunk 3: RuntimeError: boom"):
        run_pipeline(p, progress=False)
    m = read_manifest(out)
    assert not m["complete"]
    done = {s["index"] for s in m["shards"]}
    assert done == {0, 1}  # chunk 3's prefix crashed; chunks 0..1 were written (2 waits for 3 to start)
    stamps = {s["name"]: (out / s["name"]).stat().st_mtime_ns for s in m["shards"]}
    ckpt = read_manifest(out / ".work" / "prefix")
    assert {s["index"] for s in ckpt["shards"]} == {0, 1, 2}  # the verified rows are checkpointed
    monkeypatch.delenv("RUNSTEPS_CRASH")
    summary = run_pipeline(p, progress=False)
    assert summary["resumed"] is True
    assert {n: (out / n).stat().st_mtime_ns for n in stamps} == stamps  # finished shards not rewritten
    assert [r["id"] for r in shard_rows(out)] == expected_ids()
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["verify"]["in"] == 400 and steps["runsteps:DropOdd"]["in"] == 353  # whole-run counts
    # a third run has nothing to do but is still consistent
    again = run_pipeline(p, progress=False)
    assert again["already_complete"] and again["written"] == summary["written"]


def test_resume_map_only_pipeline_skips_finished_chunks(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=[{"verify": {"task": "math"}}, "runsteps:DropOdd"]))
    out = tmp_path / "out" / "groups"
    run_pipeline(p, progress=False)
    before = shard_rows(out)
    (out / "shard-00003.jsonl").unlink()
    (out / "shard-00005.jsonl").write_text('{"half": ')  # a corrupted shard is redone too
    summary = run_pipeline(p, progress=False)
    assert summary["chunks_skipped_on_resume"] == 5
    assert shard_rows(out) == before
    assert summary["steps"][0]["in"] == 400  # counts of skipped chunks come from the saved state


def test_changed_input_is_refused_then_fresh_rebuilds(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=["runsteps:DropOdd"]))
    run_pipeline(p, progress=False)
    with open(tmp_path / "groups.jsonl", "ab") as fh:
        fh.write(b'{"prompt": "new", "answer": "1", "n": 1000}\n')
    with pytest.raises(GradesetError, match=r"changed since .* --fresh"):
        run_pipeline(p, progress=False)
    summary = run_pipeline(p, progress=False, resume=False)
    assert summary["read"] == 401 and summary["written"] == 201


def test_changed_pipeline_is_refused(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=["runsteps:DropOdd"]))
    run_pipeline(p, progress=False)
    write_pipeline(tmp_path, base_doc(steps=[]))
    with pytest.raises(GradesetError, match="different pipeline"):
        run_pipeline(p, progress=False)


def test_check_report_and_exit_code(tmp_path, capsys):
    outputs = {"groups": "out/groups",
               "check": {"report": "out/report.html", "json": "out/check.json", "group_size": 2,
                         "disable": ["near_duplicates"]}}
    p = write_pipeline(tmp_path, base_doc(steps=[{"verify": {"task": "math"}}, "dedup"], outputs=outputs))
    assert main(["run", str(p), "-q"]) == 0
    rep = orjson.loads((tmp_path / "out" / "check.json").read_bytes())
    assert rep["passed"] is True and (tmp_path / "out" / "report.html").read_text().startswith("<!")
    # without dedup the exact-duplicate check fails: exit 1, reports still written
    outputs["check"]["json"] = "out/check2.json"
    p = write_pipeline(tmp_path / "b", base_doc(steps=[{"verify": {"task": "math"}}], outputs=outputs))
    assert main(["run", str(p), "-q"]) == 1
    assert "duplicates" in orjson.loads((tmp_path / "b" / "out" / "check2.json").read_bytes())["failed"]
    assert "check: FAILED" in capsys.readouterr().err


def test_unknown_check_option_is_a_parse_error(tmp_path):
    p = write_pipeline(tmp_path, base_doc(outputs={"groups": "o", "check": {"max_dupes": 1}}))
    with pytest.raises(PipelineError, match=r"outputs.check: unknown check options \['max_dupes'\]"):
        load_pipeline(p)


def test_ray_runner_without_ray_names_the_extra(tmp_path, monkeypatch):
    from gradeset.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "ray", None)
    p = write_pipeline(tmp_path, base_doc(steps=[{"verify": {"task": "math"}}]))
    with pytest.raises(MissingExtra, match=r"gradeset\[ray\]"):
        run_pipeline(p, runner="ray", progress=False)


def test_quickstart_samples_the_embedded_model_and_builds_on_policy_pairs(tmp_path):
    """The README's main job: synthetic prompts, 8 samples each from gradeset:arith-tiny, graded."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    qs = Path(__file__).parent.parent / "examples" / "quickstart.yaml"
    folder = tmp_path / "examples"
    folder.mkdir()
    shutil.copy(qs, folder / "quickstart.yaml")
    summary = run_pipeline(folder / "quickstart.yaml", progress=False)
    out = tmp_path / "out" / "quickstart"
    steps = {s["step"]: s for s in summary["steps"]}
    groups = shard_rows(out / "groups")
    assert 100 <= len(groups) == summary["written"] <= summary["read"]
    # every prompt got 8 samples from the embedded model, each graded against its gold answer
    assert steps["generate"]["stats"]["generated"] == 8 * len(groups)
    assert all(len(g["responses"]) == 8 for g in groups)
    assert all(r["meta"]["model"] == "gradeset:arith-tiny" and r["correct"] in (True, False)
               for g in groups for r in g["responses"])
    # the model is weak but not hopeless: right and wrong samples of the same prompt (a GRPO signal)
    rates = [sum(r["correct"] for r in g["responses"]) / 8 for g in groups]
    mixed = [g for g, p in zip(groups, rates) if 0 < p < 1]
    assert 0.03 < sum(rates) / len(rates) < 0.8
    assert len(mixed) >= len(groups) // 5
    # no test prompt in training, and no prompt twice
    test = {r["question"] for _, r in read_jsonl(out / "test.jsonl")}
    assert test and not test & {g["prompt"] for g in groups}
    assert len({g["prompt"] for g in groups}) == len(groups)
    # on-policy DPO: one pair per mixed group, chosen a right sample and rejected a wrong one
    dpo = [r for _, r in read_jsonl(out / "dpo.jsonl")]
    by_prompt = {g["prompt"]: g for g in groups}
    assert len(dpo) == len(mixed)
    for r in dpo:
        verdict = {x["text"]: x["correct"] for x in by_prompt[r["prompt"]]["responses"]}
        assert verdict[r["chosen"]] is True and verdict[r["rejected"]] is False
    # GRPO prompts: exactly those with a signal (zero-variance groups left out), with their answer
    grpo = [r for _, r in read_jsonl(out / "grpo.jsonl")]
    assert sorted(r["prompt"] for r in grpo) == sorted(g["prompt"] for g in mixed)
    assert all(str(r["answer"]) == str(by_prompt[r["prompt"]]["answer"]) for r in grpo)
    # the check's report shows the buckets and the zero-variance share of these groups
    rep = json.loads((out / "check.json").read_text())
    buckets = rep["stats"]["buckets"]
    assert buckets.get("mixed", 0) == len(mixed) and sum(buckets.values()) == len(groups)
    assert summary["check"]["passed"] is True and (out / "report.html").exists()


def test_check_step_inside_the_pipeline_reports_on_every_chunk_after_resume(tmp_path, monkeypatch):
    steps = [{"verify": {"task": "math"}}, {"runsteps:Crash": {"at": 5}},
             {"check": {"group_size": 2, "disable": ["near_duplicates"], "json": "out/stage.json"}}]
    p = write_pipeline(tmp_path, base_doc(steps=steps, outputs={"groups": "out/groups"}))
    monkeypatch.setenv("RUNSTEPS_CRASH", "1")
    with pytest.raises(GradesetError, match="boom"):
        run_pipeline(p, progress=False)
    monkeypatch.delenv("RUNSTEPS_CRASH")
    summary = run_pipeline(p, progress=False)
    rep = orjson.loads((tmp_path / "out" / "stage.json").read_bytes())
    # the check saw all 400 groups although 4 chunks were finished before the crash
    assert rep["stats"]["groups"] == 400
    assert "duplicates" in rep["failed"] and summary["stage_checks"][0]["passed"] is False


@pytest.mark.parametrize("example", sorted(p.name for p in (Path(__file__).parent.parent / "examples").glob("*.yaml")))
def test_every_example_pipeline_parses(example):
    pipe, _, _ = load_pipeline(Path(__file__).parent.parent / "examples" / example)
    assert pipe.outputs.groups.path and pipe.steps


def test_source_inside_the_output_folder_is_refused(tmp_path):
    p = write_pipeline(tmp_path, base_doc(steps=[], outputs={"groups": "out/groups"}))
    run_pipeline(p, progress=False)
    p2 = write_pipeline(tmp_path, base_doc(source={"path": "out/groups"}, steps=[], outputs={"groups": "out/groups"}),
                        name="p2.yaml")
    with pytest.raises(PipelineError, match="overlap"):
        prepare(p2)


def test_parquet_shards_hold_the_same_groups(tmp_path):
    from gradeset.io.readers import read_shards

    doc = base_doc(steps=[{"verify": {"task": "math"}}, "runsteps:DropOdd"])
    p = write_pipeline(tmp_path / "j", doc)
    doc["outputs"] = {"groups": {"path": "out/groups", "format": "parquet"}}
    q = write_pipeline(tmp_path / "q", doc)
    run_pipeline(p, progress=False)
    summary = run_pipeline(q, progress=False)
    pq_rows = [r for _, r in read_shards(tmp_path / "q" / "out" / "groups")]
    assert sorted(f.name for f in (tmp_path / "q" / "out" / "groups").glob("shard-*"))[0] == "shard-00000.parquet"
    assert [r["id"] for r in pq_rows] == [r["id"] for r in shard_rows(tmp_path / "j" / "out" / "groups")]
    assert summary["written"] == len(pq_rows) == 200
    assert all(r["responses"][0]["correct"] is True for r in pq_rows)
