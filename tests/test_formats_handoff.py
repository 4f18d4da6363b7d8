"""Exports that trainers take as they are, and that gradeset itself reads back.

Every writable layout is written from the same graded groups (mixed int / str answers, a
recorded system prompt), in JSONL and Parquet, and read back by ``convert``, ``check``,
``eval`` and ``train``'s loader without losing the gold answer.
"""

from __future__ import annotations

import json

import orjson
import pyarrow.parquet as pq
import pytest

from gradeset.cli import main
from gradeset.formats import export_groups, read_groups, writable_layouts

SRC = "formats/export_groups.jsonl"
GOLD = {"What is 6*7?": "42", "Half of 9 is?": "4.5", "What is 20-8?": "12"}
SYSTEM = "Answer with a number."

# how a layout's rows are made from graded groups: the build kind (or plain convert)
PAIRS = {"trl-dpo", "seed002"}
EXAMPLES = {"trl-sft", "trl-kto", "sharegpt", "alpaca", "gsm8k"}
PROMPTS = {"trl-prompt", "verl"}
# the train loader's method kind each layout is for
TRAIN_KIND = {"trl-dpo": "preference", "seed002": "preference", "trl-sft": "sft", "sharegpt": "sft",
              "alpaca": "sft", "gsm8k": "sft", "trl-kto": "unpaired", "trl-prompt": "online", "verl": "online",
              "group": "online", "seed000": "online", "seed003": "online", "generations": "online",
              "openrlhf": "online"}


def rows_of(path) -> list[dict]:
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def write(layout: str, src, out) -> None:
    if layout in PAIRS:
        cmd = ["build", "dpo", str(src), "--out", str(out), "--to", layout]
    elif layout in EXAMPLES:
        cmd = ["build", "sft", str(src), "--out", str(out), "--to", layout]
    elif layout in PROMPTS:
        cmd = ["build", "grpo", str(src), "--out", str(out), "--to", layout]
    else:
        cmd = ["convert", str(src), str(out), "--to", layout]
    assert main(cmd) == 0, cmd


def test_every_writable_layout_is_covered():
    assert set(writable_layouts()) == set(TRAIN_KIND)


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
@pytest.mark.parametrize("layout", sorted(TRAIN_KIND))
def test_layout_round_trips_through_convert_check_eval_train(layout, ext, data_dir, tmp_path):
    out = tmp_path / f"export.{ext}"
    write(layout, data_dir / SRC, out)
    rows = rows_of(out)
    assert rows
    for row in rows:  # answer and solution are text in every layout, so one Arrow column holds them
        for key in ("answer", "solution") + (("label",) if layout == "openrlhf" else ()):
            assert row.get(key) is None or isinstance(row[key], str), (key, row)

    back = tmp_path / "back.jsonl"
    assert main(["convert", str(out), str(back)]) == 0
    answers = {}
    for g in rows_of(back):
        text = g["prompt"] if isinstance(g["prompt"], str) else next(
            m["content"] for m in g["prompt"] if m["role"] == "user")
        answers[text] = str(g["answer"])
    assert answers == GOLD

    report = tmp_path / "check.json"
    assert main(["check", str(out), "--json", str(report)]) in (0, 1)
    assert json.loads(report.read_text())["stats"]["groups"] == len(rows) if layout != "seed003" else True

    from gradeset.train.data import load_rows

    train_rows, _ = load_rows(out, TRAIN_KIND[layout])
    assert train_rows
    if TRAIN_KIND[layout] == "online":
        assert sorted(r["answer"] for r in train_rows) == sorted(GOLD.values())

    if layout not in PROMPTS | {"gsm8k"}:  # gsm8k reads a written solution back as the reference
        metrics = tmp_path / "m.json"
        assert main(["eval", str(out), "--regrade", "--json", str(metrics)]) == 0
        acc = json.loads(metrics.read_text())["accuracy"]
        # regraded against the gold that came through the file: the correct sample (SFT) is right,
        # a pair or group holds one right and one wrong
        assert acc == pytest.approx(1.0 if layout in EXAMPLES else 0.5), acc


def test_system_prompt_recorded_by_generate_reaches_every_layout(data_dir):
    groups = list(read_groups(data_dir / SRC))
    one = [{**g, "responses": g["responses"][:1]} for g in groups]
    for layout in ("trl-sft", "sharegpt", "alpaca", "trl-prompt", "verl", "trl-kto", "gsm8k", "openrlhf"):
        row = next(export_groups([dict(one[0])], layout, conversational=layout != "gsm8k"))
        text = json.dumps(row)
        assert SYSTEM in text, layout
    sft = next(export_groups([dict(one[0])], "trl-sft", messages=True))
    assert sft["messages"][0] == {"role": "system", "content": SYSTEM} and "system_prompt" not in sft
    sg = next(export_groups([dict(one[0])], "sharegpt"))
    assert sg["conversations"][0] == {"from": "system", "value": SYSTEM}
    assert next(export_groups([dict(one[0])], "alpaca"))["system"] == SYSTEM
    # a string prompt stays the text the model saw; the system prompt keeps its own column
    plain = next(export_groups([dict(one[0])], "trl-prompt"))
    assert plain["prompt"] == "What is 6*7?" and plain["system_prompt"] == SYSTEM
    verl = next(export_groups([dict(one[0])], "verl"))
    assert verl["prompt"][0] == {"role": "system", "content": SYSTEM}


def test_prompt_only_rows_carry_a_solution_trl_accuracy_reward_parses(data_dir):
    pytest.importorskip("math_verify")
    from trl.rewards import accuracy_reward

    rows = list(export_groups(read_groups(data_dir / SRC), "trl-prompt"))
    assert [r["solution"] for r in rows] == ["\\boxed{42}", "\\boxed{4.5}", "\\boxed{12}"]
    completions = [[{"role": "assistant", "content": "so \\boxed{42}"}],
                   [{"role": "assistant", "content": "so \\boxed{5}"}],
                   [{"role": "assistant", "content": "so \\boxed{12}"}]]
    assert accuracy_reward(completions, solution=[r["solution"] for r in rows]) == [1.0, 0.0, 1.0]


def test_verl_data_source_routes_to_verl_default_scorer_and_flag_overrides(data_dir, tmp_path, capsys):
    out = tmp_path / "v.parquet"
    assert main(["build", "grpo", str(data_dir / SRC), "--out", str(out), "--to", "verl"]) == 0
    rows = rows_of(out)
    assert [r["data_source"] for r in rows] == ["lighteval/MATH", "openai/gsm8k", "lighteval/MATH"]
    assert rows[1]["extra_info"]["task"] == "gsm8k" and rows[1]["extra_info"]["verifier"] == "gsm8k"
    assert rows[0]["extra_info"]["answer"] == "42" and rows[0]["extra_info"]["source"] == "synth:arithmetic"
    assert rows[0]["reward_model"]["ground_truth"] == "42"
    capsys.readouterr()
    assert main(["convert", str(data_dir / SRC), str(tmp_path / "o.parquet"), "--to", "verl",
                 "--data-source", "my_math"]) == 0
    assert {r["data_source"] for r in rows_of(tmp_path / "o.parquet")} == {"my_math"}
    err = capsys.readouterr().err
    assert "no reward for data_source 'my_math'" in err  # told before verl raises NotImplementedError


def test_llamafactory_dataset_info_is_written_beside_and_merged(data_dir, tmp_path, capsys):
    info_path = tmp_path / "dataset_info.json"
    info_path.write_text(json.dumps({"theirs": {"file_name": "t.json"}}))
    assert main(["build", "dpo", str(data_dir / SRC), "--out", str(tmp_path / "pairs.jsonl"), "--to",
                 "sharegpt"]) == 0
    assert main(["build", "sft", str(data_dir / SRC), "--out", str(tmp_path / "sft.jsonl"), "--to", "alpaca"]) == 0
    info = json.loads(info_path.read_text())
    assert info["theirs"] == {"file_name": "t.json"}  # other entries kept
    assert info["pairs"]["ranking"] is True and info["pairs"]["file_name"] == "pairs.jsonl"
    assert info["pairs"]["columns"] == {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}
    assert info["sft"]["columns"]["system"] == "system" and info["sft"]["formatting"] == "alpaca"
    pair = rows_of(tmp_path / "pairs.jsonl")[0]
    assert pair["chosen"] == {"from": "gpt", "value": "The answer is 42."}  # one message, not a list
    assert pair["rejected"] == {"from": "gpt", "value": "The answer is 41."}
    assert pair["conversations"][-1]["from"] == "human"

    info_path.write_text("{not json")
    assert main(["build", "sft", str(data_dir / SRC), "--out", str(tmp_path / "sft2.jsonl"), "--to",
                 "alpaca"]) == 2
    assert info_path.read_text() == "{not json"  # never overwritten


def test_openrlhf_layout_and_flags(data_dir, tmp_path, capsys):
    for kind in ("sft", "dpo", "grpo"):
        assert main(["build", kind, str(data_dir / SRC), "--out", str(tmp_path / f"{kind}.jsonl"), "--to",
                     "openrlhf"]) == 0
    err = capsys.readouterr().err
    sft, dpo, ppo = (rows_of(tmp_path / f"{k}.jsonl")[0] for k in ("sft", "dpo", "grpo"))
    assert sft["input"] == "What is 6*7?" and sft["output"] == "The answer is 42." and sft["label"] == "42"
    assert dpo["chosen"] == "The answer is 42." and dpo["rejected"] == "The answer is 41."
    assert ppo["label"] == "42" and ppo["datasource"] == "synth:arithmetic" and "output" not in ppo
    assert "--data.input_key input --data.output_key output" in err
    assert "--data.prompt_key input --data.chosen_key chosen --data.rejected_key rejected" in err
    assert "--data.input_key input --data.label_key label" in err


def test_train_on_verl_parquet_gets_real_rewards(data_dir, tmp_path):
    from gradeset.train.data import load_rows
    from gradeset.train.rewards import build_rewards

    out = tmp_path / "v.parquet"
    assert main(["build", "grpo", str(data_dir / SRC), "--out", str(out), "--to", "verl"]) == 0
    rows, how = load_rows(out, "online")
    assert "shaped" in how
    (reward,), _ = build_rewards("correctness", workers=0)
    try:
        scores = reward(prompts=[r["prompt"] for r in rows],
                        completions=["The answer is 42.", "The answer is 5.", "The answer is 12."],
                        answer=[r["answer"] for r in rows], task=[r["task"] for r in rows])
    finally:
        reward.close()
    assert scores == [1.0, 0.0, 1.0]


def test_a_run_whose_rewards_are_all_none_fails(tmp_path):
    from gradeset.errors import GradesetError
    from gradeset.train.launch import _check_golds, _check_rewards_scored
    from gradeset.train.rewards import VerifierReward

    reward = VerifierReward("math", workers=0)
    try:
        with pytest.raises(GradesetError, match="no row has a gold answer"):
            _check_golds([reward], [{"prompt": "p"}, {"prompt": "q", "answer": ""}], "d.parquet")
        _check_golds([reward], [{"prompt": "p", "answer": "1"}], "d.parquet")
        assert reward(prompts=["p"], completions=["The answer is 1."]) == [None]  # no answer column
        with pytest.raises(GradesetError, match="all 1 completions scored None"):
            _check_rewards_scored([reward])
        assert reward(prompts=["p"], completions=["The answer is 1."], answer=["1"]) == [1.0]
        _check_rewards_scored([reward])
    finally:
        reward.close()


@pytest.mark.parametrize("layout", ["sharegpt", "alpaca", "trl-sft"])
def test_train_sft_takes_gradeset_sft_exports(layout, data_dir, tmp_path):
    from gradeset.train.data import load_rows

    out = tmp_path / "sft.jsonl"
    assert main(["build", "sft", str(data_dir / SRC), "--out", str(out), "--to", layout]) == 0
    rows, _ = load_rows(out, "sft")
    assert len(rows) == 3
    texts = [json.dumps(r) for r in rows]
    assert all("The answer is" in t for t in texts)


def test_check_passes_on_gradeset_sft_export(data_dir, tmp_path):
    out = tmp_path / "sft.jsonl"
    assert main(["build", "sft", str(data_dir / SRC), "--out", str(out)]) == 0
    report = tmp_path / "r.json"
    assert main(["check", str(out), "--json", str(report)]) == 0
    checks = {c["name"]: c["status"] for c in json.loads(report.read_text())["checks"]}
    assert checks["coverage"] == "skip"


TINY = ["--max-steps", "2", "--batch-size", "2", "--lr", "0.05", "--seed", "0", "--run-id", "t"]


def test_train_grpo_end_to_end_on_verl_parquet_scores_every_completion(data_dir, tmp_path, tiny_model_dir):
    pytest.importorskip("trl")
    data = tmp_path / "train.parquet"
    assert main(["build", "grpo", str(data_dir / SRC), "--out", str(data), "--to", "verl"]) == 0
    out = tmp_path / "run"
    assert main(["train", "grpo", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out), *TINY,
                 "--num-generations", "2", "--max-completion-length", "8", "--reward-workers", "1"]) == 0
    log = [json.loads(x) for x in (out / "debug" / "grpo_t_train_log.jsonl").read_text().splitlines()]
    means = [e["rewards/correctness/mean"] for e in log if "rewards/correctness/mean" in e]
    assert means and all(m == m for m in means)  # a number (0.0 for the untrained model), not NaN from None


def test_train_grpo_without_any_gold_exits_2_before_training(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("trl")
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {i}+1?"}) + "\n" for i in range(4)))
    out = tmp_path / "run"
    assert main(["train", "grpo", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out), *TINY,
                 "--num-generations", "2", "--max-completion-length", "8"]) == 2
    assert "no row has a gold answer" in capsys.readouterr().err
    assert not (out / "model").exists()


def test_train_sft_end_to_end_on_sharegpt_export(data_dir, tmp_path, tiny_model_dir):
    pytest.importorskip("trl")
    data = tmp_path / "sft.jsonl"
    assert main(["build", "sft", str(data_dir / SRC), "--out", str(data), "--to", "sharegpt"]) == 0
    out = tmp_path / "run"
    assert main(["train", "sft", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(out), *TINY,
                 "--max-length", "64"]) == 0
    summary = json.loads((out / "debug" / "sft_t_train.json").read_text())
    assert summary["data_rows"] == 3 and summary["global_step"] == 2


@pytest.mark.parametrize("suffix", [".parquet", ".hf"])
def test_own_writers_take_mixed_int_and_text_answers(tmp_path, suffix):
    """verify/generate write groups without an export step: int answers from synth next to text ones
    (first in one batch, then text arriving after a batch of numbers) become one text column."""
    from gradeset.io import iter_rows
    from gradeset.io.writers import write_rows

    rows = [{"prompt": f"q{i}", "answer": i} for i in range(5000)] + [{"prompt": "a", "answer": "x"},
                                                                        {"prompt": "b", "answer": 2.5}]
    out = tmp_path / f"mixed{suffix}"
    write_rows(out, rows)
    back = [r for _, r in iter_rows(out)]
    assert [r["answer"] for r in back] == [str(i) for i in range(5000)] + ["x", "2.5"]
    write_rows(tmp_path / f"one{suffix}", [{"answer": 1}, {"answer": "y"}])
    assert [r["answer"] for _, r in iter_rows(tmp_path / f"one{suffix}")] == ["1", "y"]
    with pytest.raises(Exception, match="schema"):  # other columns still have to agree
        write_rows(tmp_path / f"bad{suffix}", [{"score": 1}, {"score": "high"}])


def test_pipeline_exports_get_data_source_and_llamafactory_entry(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("""
name: handoff
source: {synth: arithmetic, n: 20, seed: 0, negatives: wrong-answer}
steps:
  - verify: {task: math}
outputs:
  groups: out/groups
  exports:
    - {path: out/pairs.jsonl, layout: sharegpt, build: {kind: dpo}}
    - {path: out/train.parquet, layout: verl, build: {kind: grpo}, data_source: openai/gsm8k}
""")
    assert main(["run", str(tmp_path / "p.yaml")]) == 0
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["pairs"]["ranking"] is True and info["pairs"]["file_name"] == "pairs.jsonl"
    rows = rows_of(tmp_path / "out" / "train.parquet")
    assert rows and {r["data_source"] for r in rows} == {"openai/gsm8k"}
    assert "LLaMA-Factory: dataset 'pairs'" in capsys.readouterr().err


def test_gradeset_verl_reward_grades_the_verl_export_by_its_extra_info(data_dir, tmp_path):
    from gradeset.serve.verl_reward import compute_score

    out = tmp_path / "v.parquet"
    assert main(["build", "grpo", str(data_dir / SRC), "--out", str(out), "--to", "verl", "--data-source",
                 "my_data"]) == 0
    rows = rows_of(out)
    right = ["The answer is 42.", "The answer is 4.5.", "The answer is 12."]
    wrong = ["The answer is 41.", "The answer is 5.", "The answer is 13."]
    for row, good, bad in zip(rows, right, wrong, strict=True):
        gold, info = row["reward_model"]["ground_truth"], row["extra_info"]
        assert compute_score(row["data_source"], good, gold, info) == 1.0, row
        assert compute_score(row["data_source"], bad, gold, info) == 0.0, row
