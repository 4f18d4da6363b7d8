"""The loop gradeset builds makes the embedded model better, and CI notices when it stops.

- the packaged model loads by name in every local loader and answers its share of its
  held-out questions greedily (mid-range, so GRPO and DPO have something to learn);
- the prompt the transformers backend feeds the model is the prompt TRL trains on;
- a short GRPO run from it, rewarded by gradeset's ``math`` verifier, raises held-out
  accuracy by a clear margin (a flipped reward lowers it);
- on-policy DPO pairs built by gradeset (generate -> verify -> build dpo), trained with an
  SFT term, raise it too (swapped pairs, or samples drawn with another prompt format,
  do not).

The held-out file is the one packaged with the model: questions its SFT never saw.
"""

from __future__ import annotations

import json
import os
import sys
import types

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL = "gradeset:arith-tiny"
EVAL_N = 200  # held-out questions per evaluation in the learning checks (a point is 0.5%)
MARGIN = 0.05  # a clear rise: 10 questions of 200, well above greedy run-to-run noise (0)


def heldout(limit: int | None = None) -> list[dict]:
    from gradeset.formats import read_groups
    from gradeset.models import embedded_path

    groups = list(read_groups(embedded_path(MODEL) / "heldout.jsonl"))
    return groups[:limit] if limit else groups


def greedy_accuracy(model: str, groups: list[dict]) -> float:
    """What ``gradeset eval --backend transformers -n 1 --temperature 0`` computes."""
    from gradeset.evaluate.runner import evaluate
    from gradeset.generate import GenerateConfig
    from gradeset.models.arith import MAX_ANSWER_TOKENS

    cfg = GenerateConfig(backend="transformers", model=str(model), n=1, temperature=0.0,
                         max_tokens=MAX_ANSWER_TOKENS, batch_size=256)
    _, metrics = evaluate(groups, task="math", generate_cfg=cfg, workers=0)
    return metrics["accuracy"]


@pytest.fixture(scope="module")
def base_accuracy() -> float:
    return greedy_accuracy(MODEL, heldout(EVAL_N))


def test_embedded_model_resolves_by_name_everywhere(monkeypatch):
    from gradeset.errors import GradesetError
    from gradeset.models import embedded_path, resolve_model_name
    from gradeset.train.launch import resolve_model

    folder = embedded_path(MODEL)
    assert resolve_model_name(MODEL) == str(folder)
    assert resolve_model(MODEL) == (str(folder.resolve()), False)  # gradeset train
    assert resolve_model_name("some/hub-id") == "some/hub-id"  # other names untouched
    with pytest.raises(GradesetError, match="unknown embedded model"):
        resolve_model_name("gradeset:no-such-model")
    # vLLM is handed the packaged folder (a stand-in vllm module records what it gets)
    seen = {}

    class FakeLLM:
        def __init__(self, **kw):
            seen.update(kw)

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=dict))
    from gradeset.generate import GenerateConfig
    from gradeset.generate.backends.vllm import VllmBackend

    VllmBackend(GenerateConfig(backend="vllm", model=MODEL, n=1))
    assert seen["model"] == str(folder)
    # files a user needs: config, weights, tokenizer, the held-out questions, how it was built
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "heldout.jsonl", "build_info.json"} <= names


def test_embedded_model_answers_about_half_of_the_heldout_questions():
    """The shipped weights, tokenizer and prompt format still fit together, mid-range.

    The build recorded 44.5% greedy (178 of 400); a mismatch between how the model was
    trained and how it is now prompted, or a wrong checkpoint, moves it out of the band
    that gives GRPO and DPO mixed groups to learn from.
    """
    groups = heldout()
    assert len(groups) == 400
    acc = greedy_accuracy(MODEL, groups)
    assert 0.40 <= acc <= 0.60, acc


def test_sampling_and_training_see_the_same_prompt_text():
    """The transformers backend renders exactly the prompt string TRL trains on."""
    from gradeset.generate import GenerateConfig
    from gradeset.generate.backends.hf import TransformersBackend
    from gradeset.generate.prompts import build_prompt
    from gradeset.train.data import shape_rows

    groups = [{"prompt": "47-49=?", "answer": "-2", "responses": []},
              {"prompt": "50+x=77,x=?", "answer": "27", "responses": []}]
    backend = TransformersBackend(GenerateConfig(backend="transformers", model=MODEL, n=1))
    rendered = [backend.render(build_prompt(g), None) for g in groups]
    trained, _ = shape_rows(groups, "online")  # what `gradeset train grpo` hands TRL
    assert rendered == [r["prompt"] for r in trained] == ["47-49=?", "50+x=77,x=?"]
    # and the model answers seed 002's forms with an integer and stops
    from gradeset.models.arith import MAX_ANSWER_TOKENS

    outs = backend.generate_batch([(build_prompt(g), None) for g in groups], 1, MAX_ANSWER_TOKENS)
    for (sample,) in outs:
        assert sample.finish_reason == "stop" and sample.text.lstrip("-").isdigit(), sample


def _train(method: str, data, out, **kw) -> str:
    from gradeset.train.launch import train

    summary = train(method, data, MODEL, out, log=lambda *_: None, **kw)
    assert summary["global_step"] > 0
    return summary["files"]["model"]


def heldout_dir():
    from gradeset.models import embedded_path

    return embedded_path(MODEL)


def training_prompts(n: int) -> list[dict]:
    """Synthetic prompts drawn with the model's build seed: never one of its held-out questions."""
    from gradeset.sources.arithmetic import synth_groups

    build = json.loads((heldout_dir() / "build_info.json").read_text())
    prompts, _ = synth_groups(n=n, seed=build["seed"], prompts_only=True, operators=build.get("operators"))
    held = {g["prompt"] for g in heldout()}
    assert not held & {g["prompt"] for g in prompts}
    return [{"prompt": g["prompt"], "answer": g["answer"], "responses": []} for g in prompts]


PROMPTS = 32  # the RL checks train on these prompts and measure greedy accuracy on them
RISE = 0.125  # 4 of 32 prompts; measured rises were 7 (GRPO) and more, a flipped reward falls


def test_grpo_with_the_verifier_reward_raises_accuracy(tmp_path, base_accuracy):
    """GRPO with the math verifier as reward learns its prompts' answers; held-out does not break.

    (A short run on 32 prompts mostly sharpens the answers of the prompts it trained on; a
    flipped reward unlearns them.)
    """
    groups = training_prompts(PROMPTS)
    before = greedy_accuracy(MODEL, groups)
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": g["prompt"], "answer": str(g["answer"])}) + "\n"
                            for g in groups))
    model = _train("grpo", data, tmp_path / "grpo", task="math", reward_workers=0, flags={
        "max_steps": 80, "learning_rate": 3e-4, "per_device_train_batch_size": 32, "num_generations": 8,
        "max_completion_length": 6, "temperature": 1.0, "seed": 0, "logging_steps": 10})
    after = greedy_accuracy(model, groups)
    assert after - before >= RISE, (before, after)
    assert greedy_accuracy(model, heldout(EVAL_N)) >= base_accuracy - 0.10  # trained prompts only: no collapse


def test_on_policy_dpo_pairs_with_an_sft_term_raise_accuracy(tmp_path, base_accuracy):
    """generate -> verify -> build dpo, as the quick start does, then TRL DPO + SFT term."""
    from gradeset import shape
    from gradeset.evaluate.runner import grade
    from gradeset.generate import GenerateConfig, generate_groups
    from gradeset.shape.rows import export

    groups = training_prompts(PROMPTS)
    before = greedy_accuracy(MODEL, groups)
    cfg = GenerateConfig(backend="transformers", model=MODEL, n=16, temperature=1.0, max_tokens=6, seed=0,
                         batch_size=512)
    graded = grade(generate_groups(groups, cfg), "math", workers=0)
    pairs = list(export(shape.iter_dpo(graded, "correct-vs-incorrect", pairs_per_prompt=None), "trl-dpo"))
    assert len(pairs) >= 8
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pairs))
    model = _train("dpo", data, tmp_path / "dpo", flags={
        "max_steps": 40, "learning_rate": 3e-4, "per_device_train_batch_size": 16, "max_length": 32,
        "loss_type": ["sigmoid", "sft"], "seed": 0, "logging_steps": 10})
    after = greedy_accuracy(model, groups)
    assert after - before >= RISE, (before, after)
    assert greedy_accuracy(model, heldout(EVAL_N)) >= base_accuracy - 0.10  # trained prompts only: no collapse
