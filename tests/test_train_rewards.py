"""Reward functions built from verifiers (TRL's calling convention) and TRL config building."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gradeset.errors import GradesetError
from gradeset.train.rewards import VerifierReward, build_rewards, parse_reward_spec

TESTS = Path(__file__).parent


def slow_verifier(completion, gold):
    """A plugin verifier that never finishes in time when asked to stall."""
    if "stall" in completion:
        time.sleep(600)  # the hang under test, not synchronisation
    return {"score": 1.0, "correct": True, "parsed": completion}


def spread(completion, gold):
    """A reward plugin with spread, so GRPO advantages are non-zero even for a random model.

    It lives in this light module because verifier workers import it by name.
    """
    score = (sum(map(ord, completion)) % 5) / 4
    return {"score": score, "correct": score >= 1.0, "parsed": completion[:10]}


@pytest.fixture
def plugin_path(monkeypatch):
    # verifier workers are fresh processes: they find this module through PYTHONPATH
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("workers", [0, 1])
def test_standard_completions_get_one_float_each(workers):
    reward = VerifierReward("math", workers=workers)
    try:
        out = reward(prompts=["q1", "q2", "q3", "q4"],
                     completions=["so \\boxed{5}", "\\boxed{6}", "I cannot work this one out, sorry about that.",
                                  "\\boxed{0.5}"],
                     answer=["5", "5", "5", "1/2"], completion_ids=[[1], [2], [3], [4]], trainer_state=None)
    finally:
        reward.close()
    assert out == [1.0, 0.0, 0.0, 1.0]
    assert all(isinstance(v, float) for v in out)
    assert reward.__name__ == "math_correctness"


def test_conversational_completions_and_missing_gold_is_none():
    reward = VerifierReward("math", workers=0)
    completions = [[{"role": "assistant", "content": "The answer is \\boxed{12}."}],
                   [{"role": "assistant", "content": "\\boxed{13}"}],
                   [{"role": "assistant", "content": "\\boxed{12}"}]]
    prompts = [[{"role": "user", "content": "7+5?"}]] * 3
    out = reward(prompts=prompts, completions=completions, answer=["12", "12", None])
    assert out == [1.0, 0.0, None]  # no gold: ungradable, not wrong


def test_task_column_picks_the_verifier_per_row():
    reward = VerifierReward("auto", workers=0)
    out = reward(prompts=["a", "b"], completions=["\\boxed{3}", "The answer is (B)."], answer=["3", "B"],
                 task=["math", "mcq"])
    assert out == [1.0, 1.0]


def test_format_reward_needs_no_gold_and_gives_partial_credit():
    reward = VerifierReward("format", workers=0)
    full = "<start_working_out>2+3<end_working_out><SOLUTION>5</SOLUTION>"
    out = reward(prompts=["p"] * 3, completions=[full, "<start_working_out>2+3", "plain"], answer=[None] * 3)
    assert out[0] == 1.0 and 0.0 < out[1] < 1.0 and out[2] == 0.0


def test_timeout_scores_none_not_zero(plugin_path):
    reward = VerifierReward("python:test_train_rewards:slow_verifier", workers=1, timeout=1.0)
    try:
        # had the pool waited for the stalled grade it would have scored 1.0 (the plugin
        # returns correct after its sleep): None proves the worker was killed at the limit
        out = reward(prompts=["p", "p"], completions=["fine", "stall"], answer=["x", "x"])
    finally:
        reward.close()
    assert out == [1.0, None]


def test_reward_spec_and_weights():
    assert parse_reward_spec("correctness=1.0,format=0.2") == [("correctness", 1.0), ("format", 0.2)]
    assert parse_reward_spec(None) == [("correctness", 1.0)]
    assert parse_reward_spec("gsm8k") == [("gsm8k", 1.0)]
    with pytest.raises(GradesetError):
        parse_reward_spec("correctness=high")
    with pytest.raises(GradesetError):
        parse_reward_spec("format=1,format=2")
    funcs, weights = build_rewards("correctness=1.0,format=0.2", task="gsm8k", workers=0)
    assert [f.__name__ for f in funcs] == ["correctness", "format"] and weights == [1.0, 0.2]
    assert funcs[0].task == "gsm8k"
    with pytest.raises(GradesetError, match="unknown verifier"):
        build_rewards("nosuchverifier=1", workers=0)


# ---- TRL config building -------------------------------------------------------------------------------------


def settings(method, tmp_path, **kw):
    pytest.importorskip("trl")
    from gradeset.train.config import build_config, get_method, resolve_settings

    m = get_method(method)
    s, lora = resolve_settings(m, output_dir=tmp_path / "ckpt", extra_defaults={"use_cpu": True, "bf16": False},
                               **kw)
    return build_config(m, s), lora


def test_gspo_and_dr_grpo_presets(tmp_path):
    gspo, _ = settings("gspo", tmp_path)
    assert type(gspo).__name__ == "GRPOConfig"
    assert gspo.importance_sampling_level == "sequence" and gspo.loss_type == "grpo"
    assert gspo.beta == 0.0 and gspo.epsilon == 3e-4 and gspo.epsilon_high == 4e-4
    assert gspo.steps_per_generation == 4 and gspo.gradient_accumulation_steps == 1
    dr, _ = settings("dr_grpo", tmp_path)
    assert dr.loss_type == "dr_grpo" and dr.scale_rewards == "none"
    assert dr.importance_sampling_level == "token"
    plain, _ = settings("grpo", tmp_path)
    assert plain.report_to == [] or plain.report_to == "none" or plain.report_to == ["none"]


def test_yaml_overrides_presets_and_flags_override_yaml(tmp_path):
    cfg_file = tmp_path / "trl.yaml"
    cfg_file.write_text("beta: 0.04\nlearning_rate: 3.0e-6\nlora:\n  r: 4\n")
    cfg, lora = settings("gspo", tmp_path, config_file=cfg_file, flags={"learning_rate": 1e-5, "max_steps": None})
    assert cfg.beta == 0.04  # file beats the GSPO preset
    assert cfg.learning_rate == 1e-5  # a flag beats the file
    assert cfg.importance_sampling_level == "sequence"  # untouched preset stays
    assert lora == {"r": 4}
    cfg, _ = settings("sft", tmp_path, sets=["max_length=64", "packing=true"])
    assert cfg.max_length == 64 and cfg.packing is True


def test_per_method_sections_in_one_file(tmp_path):
    cfg_file = tmp_path / "trl.yaml"
    cfg_file.write_text("learning_rate: 2.0e-5\ngrpo:\n  num_generations: 4\nsft:\n  max_length: 128\n")
    grpo, _ = settings("grpo", tmp_path, config_file=cfg_file)
    sft, _ = settings("sft", tmp_path, config_file=cfg_file)
    assert grpo.num_generations == 4 and grpo.learning_rate == 2e-5
    assert sft.max_length == 128 and sft.learning_rate == 2e-5


def test_unknown_keys_fail_with_the_file_and_a_suggestion(tmp_path):
    cfg_file = tmp_path / "trl.yaml"
    cfg_file.write_text("num_generation: 4\n")
    with pytest.raises(GradesetError, match=r"trl.yaml: unknown GRPOConfig.*'num_generation' \(did you mean "
                                            r"'num_generations'\?\)"):
        settings("grpo", tmp_path, config_file=cfg_file)
    with pytest.raises(GradesetError, match="num_generations"):
        settings("sft", tmp_path, sets=["num_generations=4"])
    cfg_file.write_text("lora:\n  rank: 8\n")
    with pytest.raises(GradesetError, match="LoraConfig.*'rank'"):
        settings("sft", tmp_path, config_file=cfg_file)
    cfg_file.write_text("beta: [unclosed\n")
    with pytest.raises(GradesetError, match="not valid YAML"):
        settings("dpo", tmp_path, config_file=cfg_file)
    with pytest.raises(GradesetError, match="output_dir"):
        settings("dpo", tmp_path, sets=["output_dir=/tmp/x"])
    with pytest.raises(GradesetError, match="unknown training method"):
        settings("ppo", tmp_path)


def test_format_style_option_reaches_the_verifier():
    funcs, _ = build_rewards("format=1", workers=0, verifier_opts={"format": {"style": "think"}})
    out = funcs[0](prompts=["p", "p"], completions=["<think>a</think><answer>5</answer>",
                                                   "<start_working_out>a<end_working_out><SOLUTION>5</SOLUTION>"])
    assert out[0] == 1.0 and out[1] < 1.0
