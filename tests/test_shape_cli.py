"""The shaping commands end to end: outputs, sidecars, reject files, counts that add up, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gradeset.cli import main


def rows(path):
    return [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]


@pytest.fixture
def graded(data_dir):
    return str(data_dir / "shape" / "graded.jsonl")


def counts(err: str) -> tuple[int, int, int, int, int]:
    m = re.search(r"read (\d+) groups = (\d+) used \+ (\d+) skipped.* \+ (\d+) rejected; wrote (\d+)", err)
    assert m, err
    return tuple(int(x) for x in m.groups())


def test_build_dpo_counts_add_up_and_ungraded_goes_to_rejects(graded, tmp_path, capsys):
    out = tmp_path / "dpo.jsonl"
    assert main(["build", "dpo", graded, "--out", str(out), "-q"]) == 0
    read, used, skipped, rejected, wrote = counts(capsys.readouterr().err)
    assert read == used + skipped + rejected == 6
    assert (skipped, rejected, wrote) == (3, 1, 2)
    pairs = rows(out)
    assert len(pairs) == wrote
    assert all(set(p) >= {"prompt", "chosen", "rejected", "score_chosen", "score_rejected", "margin"} for p in pairs)
    assert all(p["chosen"] != p["rejected"] and p["margin"] > 0 for p in pairs)
    rej = rows(f"{out}.rejects.jsonl")
    assert len(rej) == 1 and "no response has a score" in rej[0]["reason"] and "9/3" in rej[0]["raw"]
    assert rej[0]["line"] == 5  # the ungraded group's line in the input
    stats = json.loads(Path(f"{out}.stats.json").read_text())
    assert stats["skipped_tied"] == 2 and stats["pairs"] == 2


def test_build_dpo_conversational_and_all_pairs(graded, tmp_path):
    out = tmp_path / "dpo.jsonl"
    assert main(["build", "dpo", graded, "--out", str(out), "--strategy", "all-pairs", "--min-margin", "0.5",
                 "--conversational", "--system-prompt", "Be brief.", "-q"]) == 0
    pairs = rows(out)
    assert pairs and all(p["margin"] >= 0.5 for p in pairs)
    p = pairs[0]
    assert p["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert p["prompt"][-1]["role"] == "user" and p["chosen"][0]["role"] == "assistant"


def test_build_without_any_grades_is_exit_2_and_leaves_no_output(tmp_path, capsys):
    src = tmp_path / "ungraded.jsonl"
    src.write_text('{"prompt": "a", "responses": [{"text": "x"}, {"text": "y"}]}\n'
                   '{"prompt": "b", "responses": [{"text": "z"}]}\n')
    out = tmp_path / "o.jsonl"
    assert main(["build", "dpo", str(src), "--out", str(out), "-q"]) == 2
    assert "run `gradeset verify` first" in capsys.readouterr().err
    assert not out.exists()
    assert len(rows(f"{out}.rejects.jsonl")) == 2


def test_build_options_for_the_wrong_kind_are_usage_errors(graded, tmp_path, capsys):
    assert main(["build", "grpo", graded, "--out", str(tmp_path / "o.jsonl"), "--strategy", "best"]) == 2
    assert main(["build", "dpo", graded, "--out", str(tmp_path / "o.jsonl"), "--fallback", "reference"]) == 2
    assert main(["build", "dpo", graded, "--out", str(tmp_path / "o.jsonl"), "--strategy", "nope"]) == 2
    assert "unknown DPO strategy" in capsys.readouterr().err


def test_build_sft_first_correct_writes_seed004_sidecar_and_layout(graded, tmp_path, capsys):
    out = tmp_path / "grpo_traces_train.jsonl"
    assert main(["build", "sft", graded, "--out", str(out), "--strategy", "first-correct",
                 "--fallback", "reference", "--to", "gsm8k", "-q"]) == 0
    stats = json.loads(Path(f"{out}.stats.json").read_text())
    for key in ("total_samples", "grpo_successes", "successes", "fallback_count", "success_rate",
                "avg_attempts_for_successes", "avg_attempts_overall"):
        assert key in stats
    # 2+3, x+4 and the writing prompt (score 1.0) succeed; 7*8 and the never-sampled 10-3 fall back
    assert stats["successes"] == 3 and stats["fallback_count"] == 2 and stats["total_samples"] == 5
    got = rows(out)
    assert all({"question", "answer"} <= set(r) for r in got)
    first = next(r for r in got if r["question"] == "What is 2+3?")
    assert first["answer"] == "The answer is 5.\n\n#### 5"  # first correct in sample order
    fallback = next(r for r in got if r["question"] == "What is 7*8?")
    assert fallback["answer"].startswith("7*8 = 56") and fallback["answer"].endswith("#### 56")


def test_build_sft_messages_and_prompt_completion(graded, tmp_path):
    out = tmp_path / "sft.jsonl"
    assert main(["build", "sft", graded, "--out", str(out), "--messages", "-q"]) == 0
    got = rows(out)
    assert got and all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in got)
    assert main(["build", "sft", graded, "--out", str(out), "--strategy", "all-correct", "-q"]) == 0
    got = rows(out)
    assert {r["completion"] for r in got} == {"The answer is 5.", "It is 5.", "x=5", "x = 5",
                                              "Cheap stocks that stay cheap because they are junk."}


def test_build_grpo_band_and_offline_group_layout(graded, tmp_path, capsys):
    out = tmp_path / "grpo.jsonl"
    assert main(["build", "grpo", graded, "--out", str(out), "--mixed-only", "-q"]) == 0
    got = rows(out)
    assert [r["prompt"] for r in got] == ["What is 2+3?"]
    assert got[0]["answer"] == "5" and got[0]["task"] == "math" and got[0]["pass_rate"] == 0.5
    read, used, skipped, rejected, _ = counts(capsys.readouterr().err)
    assert read == used + skipped + rejected
    off = tmp_path / "offline.jsonl"
    assert main(["build", "grpo", graded, "--out", str(off), "--to", "group", "-q"]) == 0
    got = rows(off)
    assert len(got) == 6 and len(got[0]["responses"]) == 4 and got[0]["responses"][0]["score"] == 0.0


def test_build_kto_rows(graded, tmp_path):
    out = tmp_path / "kto.jsonl"
    assert main(["build", "kto", graded, "--out", str(out), "-q"]) == 0
    got = rows(out)
    assert {type(r["label"]) for r in got} == {bool}
    assert {(r["completion"], r["label"]) for r in got} >= {("The answer is 5.", True), ("54", False)}


def test_balance_merges_inputs_and_prints_the_table(tmp_path, capsys):
    a, b = tmp_path / "math.jsonl", tmp_path / "trivia.jsonl"
    def G(p, flags):
        return json.dumps({"prompt": p, "responses": [{"text": str(i), "correct": f} for i, f in enumerate(flags)]})
    a.write_text("\n".join([G(f"m{i}", [True, True]) for i in range(6)] + [G("mm", [True, False])]) + "\n")
    b.write_text("\n".join([G(f"t{i}", [False, False]) for i in range(4)]) + "\nnot json\n")
    out = tmp_path / "merged_balanced.jsonl"
    assert main(["balance", str(a), str(b), "--out", str(out), "--bucket-caps", "all-correct=2",
                 "--task-row-caps", "trivia=4", "-q"]) == 0
    err = capsys.readouterr().err
    got = rows(out)
    assert sorted(g["task"] for g in got) == ["math"] * 3 + ["trivia"] * 2
    assert re.search(r"math\s+all-correct\s+6\s+12\s+2\s+4", err)
    assert re.search(r"trivia\s+all-wrong\s+4\s+8\s+2\s+4", err)
    read, used, skipped, rejected, wrote = counts(err)
    assert (read, used, skipped, rejected, wrote) == (12, 5, 6, 1, 5)
    side = json.loads(Path(f"{out}.stats.json").read_text())
    assert {"task": "math", "bucket": "mixed", "groups_before": 1, "rows_before": 2, "groups_after": 1,
            "rows_after": 2} in side["table"]


def test_dedup_and_decontaminate_write_removed_rows_aside(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"prompt": p}) for p in ["79-7=?", "79 - 7 = ?", "1+1=?", "2+2=?"]) + "\n")
    out = tmp_path / "dd.jsonl"
    assert main(["dedup", str(src), "--out", str(out), "-q"]) == 0
    assert [r["prompt"] for r in rows(out)] == ["79-7=?", "1+1=?", "2+2=?"]
    assert rows(f"{out}.duplicates.jsonl")[0]["dedup"]["kind"] == "exact"
    assert "skipped 1 (exact duplicate 1)" in capsys.readouterr().err
    bench = tmp_path / "dpo_test_data.json"
    bench.write_text('{"question": "2+2=?", "answer": 4}\n')
    clean = tmp_path / "clean.jsonl"
    assert main(["decontaminate", str(out), "-b", str(bench), "--out", str(clean), "-q"]) == 0
    assert [r["prompt"] for r in rows(clean)] == ["79-7=?", "1+1=?"]
    removed = rows(f"{clean}.contaminated.jsonl")
    assert removed[0]["contamination"]["benchmark_row"] == {"question": "2+2=?", "answer": 4}
    assert main(["decontaminate", str(out), "-b", str(tmp_path / "nope.json"), "--out", str(clean)]) == 2


def test_split_writes_disjoint_files_and_summary(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"prompt": f"q{i % 50}", "answer": str(i), "difficulty": "easy"})
                             for i in range(100)) + "\n")
    out = tmp_path / "splits"
    assert main(["split", str(src), "--out", str(out), "--valid", "0.1", "--test", "0.1", "--stratify",
                 "difficulty", "--seed", "3", "-q"]) == 0
    parts = {n: rows(out / f"{n}.jsonl") for n in ("train", "valid", "test")}
    assert sum(len(v) for v in parts.values()) == 100
    prompts = {n: {r["prompt"] for r in v} for n, v in parts.items()}
    assert not (prompts["train"] & prompts["valid"] or prompts["train"] & prompts["test"]
                or prompts["valid"] & prompts["test"])
    assert (len(prompts["train"]), len(prompts["valid"]), len(prompts["test"])) == (40, 5, 5)
    summary = json.loads((out / "split.json").read_text())
    assert summary["counts"] == {n: len(v) for n, v in parts.items()}
    first = {n: [r["id"] for r in v] for n, v in parts.items()}
    assert main(["split", str(src), "--out", str(out), "--valid", "0.1", "--test", "0.1", "--seed", "3", "-q",
                 "--stratify", "difficulty"]) == 0
    assert {n: [r["id"] for r in rows(out / f"{n}.jsonl")] for n in parts} == first


def test_batch_command_single_file_and_folder(graded, tmp_path):
    out = tmp_path / "batches.jsonl"
    assert main(["batch", graded, "--out", str(out), "--strategy", "static", "--batch-size", "4", "-q"]) == 0
    assert [r["batch"] for r in rows(out)] == [0, 0, 0, 0, 1, 1]
    folder = tmp_path / "batches"
    assert main(["batch", graded, "--out", str(folder) + "/", "--strategy", "dynamic", "--max-tokens", "10",
                 "-q"]) == 0
    files = sorted(folder.glob("batch-*.jsonl"))
    assert files and sum(len(rows(f)) for f in files) == 6
    summary = json.loads((tmp_path / "batches.batches.json").read_text())
    assert summary["batches"] == len(files)
    assert all(sum(r["tokens"] for r in rows(f)) <= 10 or len(rows(f)) == 1 for f in files)


def test_seed_layouts_in_build_and_balance(tmp_path):
    """Seed 000's ranked completions become pairs; seed 003's per-completion rows are balanced."""
    ranked = tmp_path / "ranked.jsonl"
    ranked.write_text(json.dumps({"prompt": "What's the key to value investing?", "completions": [
        {"text": "Combine value with quality and momentum.", "score": 1.0},
        {"text": "Use indicators.", "score": 0.6}, {"text": "Buy cheap stocks.", "score": 0.2}]}) + "\n")
    out = tmp_path / "gspo_writing_train.jsonl"
    assert main(["build", "dpo", str(ranked), "--out", str(out), "--strategy", "all-pairs", "-q"]) == 0
    got = rows(out)
    assert len(got) == 3 and got[0]["chosen"] == "Combine value with quality and momentum."
    assert got[0]["rejected"] == "Buy cheap stocks." and got[0]["margin"] == pytest.approx(0.8)
    seed003 = tmp_path / "verified.jsonl"
    seed003.write_text("\n".join(json.dumps({"question": q, "completion": c, "correctness_label": lab})
                                 for q, c, lab in [("q1", "a", 1), ("q1", "b", 1), ("q2", "c", 0), ("q2", "d", 1)])
                       + "\n")
    bal = tmp_path / "merged_balanced.jsonl"
    assert main(["balance", str(seed003), "--out", str(bal), "--drop-buckets", "all-correct", "-q"]) == 0
    assert [g["prompt"] for g in rows(bal)] == ["q2"]


def test_build_to_a_shard_folder_keeps_the_sidecar_beside_it(graded, tmp_path):
    out = tmp_path / "pairs"
    assert main(["build", "dpo", graded, "--out", str(out) + "/", "-q"]) == 0
    assert (tmp_path / "pairs.stats.json").exists() and not (out / ".stats.json").exists()
    shards = sorted(out.glob("shard-*.jsonl"))
    assert sum(len(rows(s)) for s in shards) == 2


def test_build_exports_verl_sharegpt_alpaca(graded, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "train.parquet"
    assert main(["build", "grpo", graded, "--out", str(out), "--to", "verl", "--mixed-only", "-q"]) == 0
    (row,) = pq.read_table(out).to_pylist()
    assert row["prompt"] == [{"role": "user", "content": "What is 2+3?"}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "5"} and row["ability"] == "math"
    assert {"data_source", "extra_info"} <= set(row)
    sg = tmp_path / "sharegpt.jsonl"
    assert main(["build", "sft", graded, "--out", str(sg), "--to", "sharegpt", "-q"]) == 0
    first = rows(sg)[0]["conversations"]
    assert [t["from"] for t in first] == ["human", "gpt"] and first[1]["value"] == "The answer is 5."
    al = tmp_path / "alpaca.jsonl"
    assert main(["build", "sft", graded, "--out", str(al), "--to", "alpaca", "-q"]) == 0
    assert rows(al)[0]["instruction"] == "What is 2+3?" and rows(al)[0]["output"] == "The answer is 5."
