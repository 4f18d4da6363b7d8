"""``gradeset train`` for every method: two CPU steps on the tiny local model.

Each run asserts that weights moved (comparing the saved files with the starting model)
and that seed 004's ``model/`` + ``debug/`` layout was written.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("datasets")
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from gradeset.cli import main  # noqa: E402

TESTS = Path(__file__).parent
TINY = ["--max-steps", "2", "--batch-size", "2", "--lr", "0.05", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("train-data")
    rng = random.Random(0)
    qa = []
    for _ in range(8):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        qa.append((f"What is {a}+{b}?", str(a + b)))

    def write(name, rows):
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(d / name)

    return {
        "sft": write("sft.jsonl", [{"prompt": q, "completion": f"The answer is \\boxed{{{a}}}."} for q, a in qa]),
        "prompts": write("prompts.jsonl", [{"prompt": q, "answer": a, "task": "math"} for q, a in qa]),
        "chat_prompts": write("chat.jsonl", [{"prompt": [{"role": "user", "content": q}], "answer": a} for q, a in qa]),
        "graded": str(TESTS / "data" / "eval" / "graded.jsonl"),
    }


@pytest.fixture(autouse=True)
def plugin_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


def run_train(method, data_path, model, out, *extra):
    argv = ["train", method, "--data", data_path, "--model", str(model), "--out", str(out), "--run-id", "t",
            *TINY, *extra]
    assert main(argv) == 0
    debug = Path(out) / "debug"
    summary = json.loads((debug / f"{method}_t_train.json").read_text())
    log = [json.loads(line) for line in (debug / f"{method}_t_train_log.jsonl").read_text().splitlines()]
    assert summary["global_step"] == 2
    assert any("loss" in entry for entry in log)
    return summary


def full_weights_changed(model_dir: Path, tiny_model_dir: Path) -> bool:
    before = safetensors_torch.load_file(str(Path(tiny_model_dir) / "model.safetensors"))
    after = safetensors_torch.load_file(str(model_dir / "model.safetensors"))
    assert before.keys() == after.keys()
    return any(not torch.equal(before[k], after[k]) for k in before)


def lora_moved(model_dir: Path) -> bool:
    weights = safetensors_torch.load_file(str(model_dir / "adapter_model.safetensors"))
    b = [v for k, v in weights.items() if "lora_B" in k]
    assert b, "no LoRA B matrices saved"
    return any(bool(v.abs().sum() > 0) for v in b)  # B starts at zero: non-zero means it trained


def test_sft_full_weights(data, tiny_model_dir, tmp_path):
    out = tmp_path / "sft"
    s = run_train("sft", data["sft"], tiny_model_dir, out, "--max-length", "32")
    assert s["saved"] == "full-model" and s["trainable_tensors_changed"] > 0
    assert full_weights_changed(out / "model", tiny_model_dir)
    assert (out / "model" / "tokenizer_config.json").exists()


def test_dpo_from_graded_groups_with_lora(data, tiny_model_dir, tmp_path):
    out = tmp_path / "dpo"
    s = run_train("dpo", data["graded"], tiny_model_dir, out, "--max-length", "32", "--lora", "--set", "lora.r=4")
    assert s["data_source"].startswith("shaped from 3 groups")
    assert s["saved"] == "lora-adapter" and s["lora_config"]["r"] == 4
    assert lora_moved(out / "model")


def test_kto_from_graded_groups(data, tiny_model_dir, tmp_path):
    out = tmp_path / "kto"
    s = run_train("kto", data["graded"], tiny_model_dir, out, "--max-length", "32")
    assert s["trl_config"]["max_length"] == 32
    assert full_weights_changed(out / "model", tiny_model_dir)


GRPO_TINY = ["--num-generations", "2", "--max-completion-length", "12", "--reward-workers", "1",
             "--reward", "correctness=1.0,python:test_train_rewards:spread=0.5"]


def test_grpo_with_verifier_rewards_and_lora(data, tiny_model_dir, tmp_path):
    out = tmp_path / "grpo"
    s = run_train("grpo", data["graded"], tiny_model_dir, out, "--task", "math", "--lora", *GRPO_TINY)
    assert s["data_source"].startswith("shaped from 3 groups")
    assert s["trl_config"]["reward_weights"] == [1.0, 0.5]
    assert [r["name"] for r in s["rewards"]] == ["correctness", "python:test_train_rewards:spread"]
    log = [json.loads(line) for line in (out / "debug" / "grpo_t_train_log.jsonl").read_text().splitlines()]
    assert any("rewards/correctness/mean" in e for e in log)
    assert lora_moved(out / "model")


def test_gspo_paper_settings_train(data, tiny_model_dir, tmp_path):
    out = tmp_path / "gspo"
    s = run_train("gspo", data["prompts"], tiny_model_dir, out, *GRPO_TINY)
    cfg = s["trl_config"]
    assert cfg["importance_sampling_level"] == "sequence" and cfg["epsilon"] == 3e-4 and cfg["beta"] == 0.0
    assert cfg["steps_per_generation"] == 4
    assert full_weights_changed(out / "model", tiny_model_dir)


def test_dr_grpo_conversational_prompts(data, tiny_model_dir, tmp_path):
    out = tmp_path / "dr_grpo"
    s = run_train("dr_grpo", data["chat_prompts"], tiny_model_dir, out, "--task", "math", *GRPO_TINY)
    assert s["trl_config"]["loss_type"] == "dr_grpo" and s["trl_config"]["scale_rewards"] == "none"
    assert full_weights_changed(out / "model", tiny_model_dir)


def test_continue_from_an_earlier_lora_run(data, tiny_model_dir, tmp_path):
    """Seed 004's --base-model outputs/prep_sft: the run folder resolves to its model/ adapter."""
    prep = tmp_path / "prep"
    run_train("sft", data["sft"], tiny_model_dir, prep, "--max-length", "32", "--lora")
    full = tmp_path / "full"
    s = run_train("sft", data["sft"], prep, full, "--max-length", "32", "--lora")
    assert any("continuing LoRA adapter" in n for n in s["notes"])
    cfg = json.loads((full / "model" / "adapter_config.json").read_text())
    assert Path(cfg["base_model_name_or_path"]).resolve() == Path(tiny_model_dir).resolve()
    a = safetensors_torch.load_file(str(prep / "model" / "adapter_model.safetensors"))
    b = safetensors_torch.load_file(str(full / "model" / "adapter_model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_train_errors_are_clear(data, tiny_model_dir, tmp_path, capsys):
    out = str(tmp_path / "x")
    assert main(["train", "sft", "--data", data["sft"], "--model", str(tiny_model_dir), "--out", out,
                 "--num-generations", "2"]) == 2
    assert "num_generations" in capsys.readouterr().err
    assert main(["train", "sft", "--data", data["sft"], "--model", str(tmp_path / "nope"), "--out", out,
                 "--reward", "format=1"]) == 2
    assert "--reward applies to grpo" in capsys.readouterr().err
    assert main(["train", "grpo", "--data", data["prompts"], "--model", str(tmp_path), "--out", out]) == 2
    assert "not a model folder" in capsys.readouterr().err
    # GSPO's 4 steps per generation need 4 prompts per batch; the graded fixture has 3
    assert main(["train", "gspo", "--data", data["graded"], "--model", str(tiny_model_dir), "--out", out,
                 *TINY, *GRPO_TINY]) == 2
    assert "prompts per generation batch" in capsys.readouterr().err


def test_eval_after_training_writes_seed004_debug_files(data, tiny_model_dir, tmp_path):
    import csv

    out = tmp_path / "sft_eval"
    s = run_train("sft", data["sft"], tiny_model_dir, out, "--max-length", "32", "--lora",
                  "--eval-data", data["prompts"], "--task", "math", "--eval-k", "1,2", "--eval-max-tokens", "6",
                  "--eval-limit", "3")
    debug = out / "debug"
    rows = list(csv.DictReader((debug / "sft_t.csv").open()))
    assert len(rows) == 3 * 2  # 3 prompts, n = the largest k
    assert {row["model"] for row in rows} == {str(out / "model")}
    text = (debug / "sft_t_metrics.txt").read_text()
    assert "stage: sft" in text and "run_id: t" in text and "pass@2" in text
    metrics = json.loads((debug / "sft_t_metrics.json").read_text())
    assert metrics["n_groups"] == 3 and metrics["n_responses"] == 6
    assert s["eval"]["metrics"]["n_responses"] == 6


def test_missing_train_extra_is_a_clear_error(data, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "trl", None)  # import trl -> ImportError
    rc = main(["train", "sft", "--data", data["sft"], "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "pip install 'gradeset[train]'" in capsys.readouterr().err
