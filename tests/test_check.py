"""gradeset check: every check on fixtures that pass and that fail, exit codes, the library API.

bad.jsonl puts one problem on each known line (see tests/data/check/make_fixtures.py),
so the assertions name the exact lines each check must report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradeset.check import CheckConfig, CheckRunner, collect_stats, render_report, run_checks
from gradeset.check.api import check_groups
from gradeset.check.stats import histogram, quantile
from gradeset.cli import main

DATA = Path(__file__).parent / "data" / "check"


def run_cli(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    code = main(["check", *args, "--json", str(out), "--quiet"])
    data = json.loads(out.read_text()) if out.exists() else {}
    return code, data


def check(data: dict, name: str) -> dict:
    return next(c for c in data["checks"] if c["name"] == name)


def lines(data: dict, name: str) -> list[int]:
    return [x["line"] for x in check(data, name)["examples"]]


def test_good_fixture_passes_every_enabled_check(tmp_path, capsys):
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--group-size", "4")
    assert code == 0
    assert data["passed"] is True and data["failed"] == []
    status = {c["name"]: c["status"] for c in data["checks"]}
    for name in ("layout", "group_size", "scores", "coverage", "empty_text", "duplicates", "near_duplicates",
                 "truncated", "length_outliers"):
        assert status[name] == "pass", name
    # 4 of 12 groups are all correct / all wrong: reported as a warning with their lines
    assert status["zero_variance"] == "warn"
    assert lines(data, "zero_variance") == [4, 5, 10, 11]
    assert check(data, "zero_variance")["value"] == pytest.approx(4 / 12)
    assert data["stats"]["groups"] == 12 and data["stats"]["responses"] == 48
    table = capsys.readouterr().out
    assert "all enabled checks passed" in table and "PASS    coverage" in table


def test_bad_fixture_reports_each_failing_line(tmp_path, capsys):
    code, data = run_cli(tmp_path, str(DATA / "bad.jsonl"), "--group-size", "4", "--test", str(DATA / "test.jsonl"))
    assert code == 1
    assert set(data["failed"]) == {"layout", "group_size", "scores", "empty_text", "duplicates",
                                   "near_duplicates", "test_overlap"}
    assert lines(data, "layout") == [2, 4]
    assert "invalid JSON" in check(data, "layout")["examples"][0]["detail"]
    assert lines(data, "group_size") == [3]
    assert lines(data, "scores") == [4] and "1.5" in check(data, "scores")["examples"][0]["detail"]
    assert lines(data, "empty_text") == [6, 8]
    assert lines(data, "duplicates") == [7]
    assert check(data, "duplicates")["examples"][0]["id"] == "dup-of-1"
    assert lines(data, "near_duplicates") == [12]
    assert "line 11" in check(data, "near_duplicates")["examples"][0]["detail"]
    assert lines(data, "test_overlap") == [13, 14]
    # within their default thresholds: warnings that still name the rows
    assert check(data, "truncated")["status"] == "warn" and lines(data, "truncated") == [9]
    assert check(data, "length_outliers")["status"] == "warn" and lines(data, "length_outliers") == [10]
    assert check(data, "coverage")["status"] == "pass"
    out = capsys.readouterr().out
    assert "FAIL    duplicates" in out and "line 7 id=dup-of-1" in out
    assert "7 check(s) failed" in out


def test_thresholds_turn_warnings_into_failures(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "bad.jsonl"), "--min-coverage", "0.95", "--max-truncated", "0",
                         "--max-length", "100", "--max-zero-variance", "0.1",
                         "--disable", "layout", "scores", "empty_text", "duplicates", "near_duplicates")
    assert code == 1
    assert set(data["failed"]) == {"coverage", "truncated", "length_outliers", "zero_variance"}
    assert lines(data, "coverage") == [5, 5, 5, 5]  # all four responses of line 5 unscored
    assert check(data, "coverage")["value"] == pytest.approx(47 / 51)
    assert lines(data, "truncated") == [9]
    assert lines(data, "length_outliers") == [10] and "402 words > 100" in check(data, "length_outliers")[
        "examples"][0]["detail"]
    assert lines(data, "zero_variance") == [13, 14, 15]


def test_disable_every_failing_check_exits_zero(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "bad.jsonl"), "--disable", "layout,scores", "empty_text",
                         "duplicates", "near_duplicates")
    assert code == 0
    assert check(data, "duplicates")["status"] == "skip" and check(data, "duplicates")["examples"] == []


def test_preference_pairs_tied_identical_and_inverted(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "pairs.jsonl"), "--mode", "pairs")
    assert code == 1 and data["failed"] == ["tied_pairs"]
    details = {x["line"]: x["detail"] for x in check(data, "tied_pairs")["examples"]}
    assert sorted(details) == [2, 3, 4]
    assert "same text" in details[2] and "tied scores" in details[3] and "below rejected" in details[4]
    assert check(data, "zero_variance")["status"] == "skip"
    code, data = run_cli(tmp_path, str(DATA / "pairs.jsonl"), "--mode", "pairs", "--max-tied", "0.6")
    assert code == 0


def test_kto_label_balance(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "kto_balanced.jsonl"), "--mode", "kto")
    assert code == 0 and check(data, "label_balance")["value"] == pytest.approx(0.5)
    code, data = run_cli(tmp_path, str(DATA / "kto_skewed.jsonl"), "--mode", "kto")
    assert code == 1 and data["failed"] == ["label_balance"]
    assert check(data, "label_balance")["value"] == pytest.approx(7 / 8)
    code, _ = run_cli(tmp_path, str(DATA / "kto_skewed.jsonl"), "--mode", "kto", "--label-band", "0.5", "0.9")
    assert code == 0


def test_split_leakage(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--splits", str(DATA / "splits"))
    assert code == 1 and data["failed"] == ["split_leakage"]
    [ex] = check(data, "split_leakage")["examples"]
    assert ex["line"] == 1 and ex["source"].endswith("val.jsonl") and "line 3" in ex["detail"]
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--splits", str(DATA / "splits" / "test.jsonl"))
    assert code == 0 and check(data, "split_leakage")["status"] == "pass"


@pytest.mark.parametrize("content", [None, "", '{"foo": 1}\n{"bar": 2}\n'])
def test_unreadable_input_exits_2(tmp_path, capsys, content):
    path = tmp_path / "in.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path), "--quiet"]) == 2
    assert "gradeset: error:" in capsys.readouterr().err


def test_bad_options_exit_2(tmp_path, capsys):
    assert main(["check", str(DATA / "good.jsonl"), "--disable", "nosuchcheck"]) == 2
    assert "nosuchcheck" in capsys.readouterr().err
    assert main(["check", str(DATA / "good.jsonl"), "--min-coverage", "80"]) == 2
    assert main(["check", str(DATA / "good.jsonl"), "--test", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["check", str(DATA / "good.jsonl"), "--splits", str(tmp_path / "missing")]) == 2
    assert main(["check", str(DATA / "good.jsonl"), "--layout", "no-such-layout"]) == 2
    assert main(["check", str(DATA / "good.jsonl"), "--tokenizer", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing.jsonl" in err and "no-such-layout" in err and "cannot load a tokenizer" in err


def test_run_checks_library_with_lines_and_ids():
    groups = [(10, {"id": "a", "prompt": "p one two three", "responses": [
        {"text": "x", "score": 1.0, "correct": True}, {"text": "y", "score": 1.0, "correct": True}]}),
        (20, {"id": "b", "prompt": "p four five six", "responses": [
            {"text": "x", "score": 0.0, "correct": False}, {"text": "y", "score": 1.0, "correct": True}]})]
    rep = run_checks(groups, CheckConfig(max_zero_variance=0.5))
    assert rep.exit_code == 0 and rep.result("zero_variance").status == "warn"
    assert [(x.id, x.line) for x in rep.result("zero_variance").examples] == [("a", 10)]
    rep = run_checks(groups, CheckConfig(max_zero_variance=0.4))
    assert rep.exit_code == 1 and [r.name for r in rep.failed] == ["zero_variance"]
    # ids are filled from content when missing; lines default to the position
    rep = run_checks([{"prompt": "q", "responses": []}, {"prompt": "q", "responses": []}])
    [dup] = rep.result("duplicates").examples
    assert dup.line == 2 and dup.id and len(dup.id) == 16


def test_run_checks_splits_and_test_prompts():
    train = [{"prompt": "What is the boiling point of water at sea level in celsius degrees?"},
             {"prompt": "Name a prime number larger than one hundred and smaller than two hundred."}]
    rep = run_checks(train, test_prompts=["Quiz: what is the boiling point of water at sea level in kelvin?"],
                     splits={"val": [{"prompt": "name a PRIME number larger than one hundred and smaller than "
                                                "two hundred."}]})
    assert [x.line for x in rep.result("test_overlap").examples] == [1]
    [leak] = rep.result("split_leakage").examples
    assert leak.source == "val" and leak.line == 1
    assert {r.name for r in rep.failed} == {"test_overlap", "split_leakage"}


def test_invalid_groups_in_library_use_count_as_layout_failures():
    rep = run_checks([{"prompt": "ok", "responses": [{"text": "a", "score": 3}]}, {"no": "prompt"}])
    assert [x.line for x in rep.result("layout").examples] == [1, 2]
    assert [x.line for x in rep.result("scores").examples] == [1]
    assert rep.stats["groups"] == 0


def test_streaming_keeps_bounded_state():
    cfg = CheckConfig(examples=5, sample=9)

    def stream():
        for i in range(3000):
            yield {"id": f"g{i}", "prompt": f"prompt number {i % 1500} about topic {i % 1500 % 7}",
                   "responses": [{"text": "a b c", "score": float(i % 2), "correct": bool(i % 2)},
                                 {"text": "a b", "score": 1.0, "correct": True}]}

    runner = CheckRunner(cfg)
    for i, g in enumerate(stream(), 1):
        runner.add(g, i)
    rep = runner.finish()
    assert rep.stats["groups"] == 3000
    assert rep.result("duplicates").count == 1500 and len(rep.result("duplicates").examples) == 5
    assert len(rep.sample) <= 9
    assert not hasattr(runner, "rows") and len(runner.prompts_seen) == 1500


def test_test_overlap_and_near_duplicates_follow_the_shaping_rules():
    # check flags what `gradeset decontaminate` / `dedup --method near` would remove, no more:
    # templated arithmetic prompts that differ in a number are other questions
    train = [{"prompt": "8-x=42,x=?"}, {"prompt": "50-x=42,x=?"}, {"prompt": "1+50=?"},
             {"prompt": "Quiz: what is 50-x=42,x=? Show your work."}]
    rep = run_checks(train, test_prompts=["50-x=42,x=?", "x*1=50,x=?"])
    assert [x.line for x in rep.result("test_overlap").examples] == [2, 4]
    assert "is in the test set" in rep.result("test_overlap").examples[0].detail
    base = "the quick brown fox jumps over the lazy dog near the river bank at dawn every single day"
    rep = run_checks([{"prompt": base}, {"prompt": base + " again"}, {"prompt": base.replace("dawn", "dusk")},
                      {"prompt": "completely different words about integrals and series convergence tests"}])
    assert [x.line for x in rep.result("near_duplicates").examples] == [2]


def test_quantile_and_histogram():
    counts = {1: 1, 2: 1, 3: 1, 4: 1}
    assert quantile(counts, 0.5) == pytest.approx(2.5)
    assert quantile(counts, 0.0) == 1 and quantile(counts, 1.0) == 4
    h = histogram({v: 1 for v in range(100)} | {10_000: 1}, bins=10)
    assert sum(b["count"] for b in h) == 101 and h[-1].get("overflow") and h[-1]["count"] == 1


def test_collect_stats_buckets_and_slices():
    groups = [{"prompt": "a", "category": "alg", "responses": [{"text": "x", "correct": True, "score": 1.0}]},
              {"prompt": "b", "category": "alg", "responses": [{"text": "x", "correct": False, "score": 0.0},
                                                               {"text": "y", "correct": True, "score": 1.0}]},
              {"prompt": "c", "category": "geo", "responses": []}]
    st = collect_stats(groups)
    assert st["buckets"] == {"all-correct": 1, "mixed": 1, "ungraded": 1}
    alg = next(r for r in st["slices"]["category"] if r["value"] == "alg")
    assert alg["pass_rate"] == pytest.approx(2 / 3)
    assert sum(b["count"] for b in st["score_histogram"]) == 3


def test_report_escapes_hostile_model_output():
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"quoted"'
    rep = run_checks([{"prompt": evil, "answer": evil, "category": evil, "responses": [
        {"text": evil, "score": 0.5, "correct": False, "parsed": evil}]}])
    html = render_report(rep, title=evil)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_stages_from_json_and_data_files(tmp_path):
    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps([{"name": "source", "groups": 20}, {"name": "verified", "groups": 15}]))
    html = tmp_path / "r.html"
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--stages", str(stages), str(DATA / "bad.jsonl"),
                         "--report", str(html))
    assert code == 0
    assert [s["name"] for s in data["stages"]] == ["source", "verified", "bad.jsonl", "good.jsonl"]
    assert data["stages"][2]["groups"] == 13 and data["stages"][2]["rejected"] == 2
    assert data["stages"][3]["groups"] == 12
    text = html.read_text()
    assert "verified" in text and "Correctness buckets per stage" in text


def test_check_groups_for_runners_writes_reports(tmp_path):
    groups = [json.loads(x) for x in (DATA / "good.jsonl").read_text().splitlines()]
    rep = check_groups(iter(groups), {"group_size": 4, "max_zero_variance": 0.2},
                       json_path=tmp_path / "c.json", report=tmp_path / "c.html",
                       stages=[{"name": "final", "groups": 12}])
    assert [r.name for r in rep.failed] == ["zero_variance"]
    assert json.loads((tmp_path / "c.json").read_text())["failed"] == ["zero_variance"]
    assert (tmp_path / "c.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(Exception, match="unknown check options"):
        check_groups([], {"no_such": 1})


def test_token_lengths_with_local_tokenizer(tmp_path, tiny_model_dir):
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--tokenizer", str(tiny_model_dir))
    assert code == 0
    assert data["stats"]["unit"] == "tokens"
    _, words_data = run_cli(tmp_path, str(DATA / "good.jsonl"))
    # a byte-level BPE yields more tokens than whitespace words
    assert data["stats"]["response_length"]["mean"] > words_data["stats"]["response_length"]["mean"]


def test_check_step_passes_groups_through_and_reports():
    import pickle

    from gradeset.steps import build_step

    groups = [json.loads(x) for x in (DATA / "good.jsonl").read_text().splitlines()]
    step = build_step("check", {"group_size": 4, "max_zero_variance": 0.2})
    out = [g for batch in step.process(iter([groups[:5], groups[5:]])) for g in batch]
    assert out == groups
    rep = step.report()
    assert step.stats == {"checked": 12, "failed_checks": 1}
    assert [r.name for r in rep.failed] == ["zero_variance"]
    clone = pickle.loads(pickle.dumps(step))
    assert clone.config.group_size == 4 and clone.stats == {"checked": 0}


def test_pipeline_runner_contract():
    """What gradeset.run.local.run_check uses: CheckConfig(**opts), run_checks, .passed, render_html."""
    from gradeset.check.report import render_html

    rows = [json.loads(x) for x in (DATA / "bad.jsonl").read_text().splitlines() if x.endswith("}")]
    rep = run_checks(iter(rows), CheckConfig(**{"group_size": 4}))
    assert rep.passed is False and rep.to_dict()["passed"] is False
    assert "group_size" in rep.to_dict()["failed"]
    assert "<svg" in render_html(rep)


def _has_layout(name: str) -> bool:
    from gradeset.formats import readable_layouts

    return name in readable_layouts()


def test_trl_layouts_are_detected_and_checked_by_their_mode(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "trl_dpo.jsonl"))
    assert data["layout"] == "trl-dpo" and data["mode"] == "pairs"
    assert code == 1 and data["failed"] == ["tied_pairs"] and lines(data, "tied_pairs") == [2]
    # two pairs share a prompt by design: not duplicates, since the rows differ
    assert check(data, "duplicates")["status"] == "pass"
    code, data = run_cli(tmp_path, str(DATA / "trl_kto.jsonl"))
    assert data["layout"] == "trl-kto" and data["mode"] == "kto"
    assert code == 0 and check(data, "label_balance")["value"] == pytest.approx(0.75)
    code, data = run_cli(tmp_path, str(DATA / "trl_kto.jsonl"), "--label-band", "0.4", "0.6")
    assert code == 1 and data["failed"] == ["label_balance"]


def test_prompt_only_data_checks_prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"prompt": f"Question {i}: " + " ".join(["word"] * (5 + i % 3))} for i in range(20)]
    rows.append({"prompt": "Question long: " + " ".join(["word"] * 300)})
    rows.append(dict(rows[3]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, data = run_cli(tmp_path, str(path), "--disable", "near_duplicates")
    assert code == 1 and data["failed"] == ["duplicates"] and lines(data, "duplicates") == [22]
    for name in ("scores", "coverage", "zero_variance", "truncated"):
        assert check(data, name)["status"] == "skip", name
    assert check(data, "length_outliers")["status"] == "warn" and lines(data, "length_outliers") == [21]
    assert "prompt" in check(data, "length_outliers")["examples"][0]["detail"]


def test_shard_folder_names_the_shard_and_its_line(tmp_path):
    folder = tmp_path / "groups"
    folder.mkdir()
    good = (DATA / "good.jsonl").read_text().splitlines()
    (folder / "shard-00000.jsonl").write_text("\n".join(good[:3]) + "\n")
    (folder / "shard-00001.jsonl").write_text("\n".join([good[3], "{not json", good[1]]) + "\n")
    code, data = run_cli(tmp_path, str(folder))
    assert code == 1 and set(data["failed"]) == {"layout", "duplicates"}
    [bad] = check(data, "layout")["examples"]
    assert bad["line"] == 2 and bad["source"].endswith("shard-00001.jsonl")
    [dup] = check(data, "duplicates")["examples"]
    assert dup["line"] == 3 and dup["source"].endswith("shard-00001.jsonl")
    assert "shard-00000.jsonl:2" in dup["detail"]


def test_seed003_rows_grouped_by_question_report_the_groups_last_row(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "seed003_rows.jsonl"))
    assert data["layout"] == "seed003" and data["stats"]["groups"] == 3
    assert code == 1 and data["failed"] == ["empty_text"] and lines(data, "empty_text") == [5]
    assert lines(data, "zero_variance") == [4]  # Q2: rows 3-4, both correct
    assert check(data, "group_size")["status"] == "warn"


def test_warn_as_fail(tmp_path):
    code, data = run_cli(tmp_path, str(DATA / "good.jsonl"), "--warn-as-fail")
    assert code == 1 and data["passed"] is True  # only a warning (zero_variance), now gating
    code, _ = run_cli(tmp_path, str(DATA / "good.jsonl"), "--warn-as-fail", "--disable", "zero_variance")
    assert code == 0


def test_without_numpy_near_duplicates_skip_and_the_rest_runs(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numpy(name, *args, **kwargs):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("no numpy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    rep = run_checks([{"prompt": "a b c d"}, {"prompt": "a b c d"}])
    assert rep.result("near_duplicates").status == "skip" and "numpy" in rep.result("near_duplicates").message
    assert rep.result("duplicates").status == "fail"
