"""gradeset's exports train as they are in TRL: two steps of each trainer on a tiny local model.

The datasets are written to disk by ``gradeset build`` and loaded back with ``datasets``,
exactly as a user would; each test asserts that the model's parameters moved.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")
torch = pytest.importorskip("torch")

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COMMON = dict(max_steps=2, per_device_train_batch_size=2, report_to="none", use_cpu=True, logging_steps=1,
              save_strategy="no", learning_rate=1e-2, seed=0, dataloader_num_workers=0)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, data_dir):
    """Every export the trainers read, built by the CLI from one graded fixture."""
    from gradeset.cli import main

    out = tmp_path_factory.mktemp("exports")
    src = str(data_dir / "shape" / "graded.jsonl")
    runs = {
        "sft": ["build", "sft", src, "--out", str(out / "sft.jsonl")],
        "sft_messages": ["build", "sft", src, "--out", str(out / "sft_messages.jsonl"), "--messages"],
        "dpo": ["build", "dpo", src, "--out", str(out / "dpo.jsonl"), "--strategy", "all-pairs"],
        "dpo_conv": ["build", "dpo", src, "--out", str(out / "dpo_conv.parquet"), "--conversational"],
        "kto": ["build", "kto", src, "--out", str(out / "kto.jsonl")],
        "grpo": ["build", "grpo", src, "--out", str(out / "grpo.jsonl")],
        "grpo_conv": ["build", "grpo", src, "--out", str(out / "grpo_conv.parquet"), "--conversational",
                      "--system-prompt", "Put the final answer in \\boxed{}."],
    }
    paths = {}
    for name, argv in runs.items():
        assert main(argv + ["--quiet"]) in (0,), name
        paths[name] = argv[argv.index("--out") + 1]
    return paths


def _load(path):
    from datasets import load_dataset

    kind = "parquet" if path.endswith(".parquet") else "json"
    return load_dataset(kind, data_files=path, split="train")


def _model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    return model, tok, before


def _changed(model, before) -> bool:
    return any(not torch.equal(before[n], p.detach().cpu()) for n, p in model.named_parameters())


@pytest.mark.parametrize("name", ["sft", "sft_messages"])
def test_sft_trainer_trains_on_export(exports, tiny_model_dir, tmp_path, name):
    from trl import SFTConfig, SFTTrainer

    ds = _load(exports[name])
    assert ("messages" in ds.column_names) == (name == "sft_messages")
    model, tok, before = _model(tiny_model_dir)
    trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp_path), max_length=32, **COMMON),
                         train_dataset=ds, processing_class=tok)
    trainer.train()
    assert _changed(trainer.model, before)


@pytest.mark.parametrize("name", ["dpo", "dpo_conv"])
def test_dpo_trainer_trains_on_export(exports, tiny_model_dir, tmp_path, name):
    from trl import DPOConfig, DPOTrainer

    ds = _load(exports[name])
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert all(c != r for c, r in zip(ds["chosen"], ds["rejected"], strict=True))
    model, tok, before = _model(tiny_model_dir)
    trainer = DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp_path), max_length=32, **COMMON),
                         train_dataset=ds, processing_class=tok)
    trainer.train()
    assert _changed(trainer.model, before)


def test_kto_trainer_trains_on_export(exports, tiny_model_dir, tmp_path):
    from trl import KTOConfig, KTOTrainer

    ds = _load(exports["kto"])
    assert set(ds["label"]) == {True, False}
    model, tok, before = _model(tiny_model_dir)
    trainer = KTOTrainer(model=model, args=KTOConfig(output_dir=str(tmp_path), max_length=32, **COMMON),
                         train_dataset=ds, processing_class=tok)
    trainer.train()
    assert _changed(trainer.model, before)


def _verifier_reward(calls: list):
    """TRL reward from gradeset's math verifier, reading the exported ``answer`` column."""
    from gradeset.verify import get_verifier

    verify = get_verifier("math")

    def reward(completions, answer, **kwargs):
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        out = [float(verify(t, a).score) for t, a in zip(texts, answer, strict=True)]
        calls.append((texts, list(answer), out))
        return out

    return reward


def test_verifier_reward_scores_right_and_wrong_answers():
    reward = _verifier_reward([])
    assert reward(["The answer is \\boxed{5}.", "It is 4."], ["5", "5"]) == [1.0, 0.0]
    assert reward([[{"role": "assistant", "content": "\\boxed{56}"}]], ["56"]) == [1.0]


def _length_reward(completions, **kwargs):
    """A shaping term so a random tiny model (which never answers right) still gets reward variance."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [len(t) / 64.0 for t in texts]


GRPO_VARIANTS = {
    "grpo": dict(loss_type="grpo"),
    "gspo": dict(loss_type="grpo", importance_sampling_level="sequence"),
    "dr_grpo": dict(loss_type="dr_grpo", scale_rewards="none"),
}


@pytest.mark.parametrize(("name", "variant"), [("grpo", "grpo"), ("grpo", "gspo"), ("grpo", "dr_grpo"),
                                               ("grpo_conv", "grpo")])
def test_grpo_family_trains_on_export(exports, tiny_model_dir, tmp_path, variant, name):
    """GRPO, GSPO and Dr. GRPO train on the same prompt-only export; only trainer settings differ."""
    from trl import GRPOConfig, GRPOTrainer

    ds = _load(exports[name])
    assert "answer" in ds.column_names and "task" in ds.column_names
    calls: list = []
    model, tok, before = _model(tiny_model_dir)
    args = GRPOConfig(output_dir=str(tmp_path), max_completion_length=16, num_generations=2,
                      **GRPO_VARIANTS[variant], **COMMON)
    trainer = GRPOTrainer(model=model, reward_funcs=[_verifier_reward(calls), _length_reward], args=args,
                          train_dataset=ds, processing_class=tok)
    trainer.train()
    assert _changed(trainer.model, before)
    # The verifier saw the gold answers exported by gradeset and scored every completion.
    golds = {str(a) for a in ds["answer"] if a is not None}
    assert calls and all(set(map(str, answers)) <= golds | {"None"} for _, answers, _ in calls)
    assert all(0.0 <= s <= 1.0 for _, _, scores in calls for s in scores)
