"""Each consumer loads gradeset's exports with its OWN loading code.

TRL and HF datasets 5 run in-process (the project's venv has them). datasets 4, verl,
LLaMA-Factory and OpenRLHF live in their own venvs (``tests/consumers/install.sh``), found
through ``GRADESET_CONSUMER_VENVS`` (a folder holding ``exports-NAME`` venvs); their loaders
(``tests/consumers/load_*.py``) run there in a subprocess and print what they read as JSON.
A consumer whose venv is absent is skipped with the package it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from gradeset.cli import main

HERE = Path(__file__).parent / "consumers"
SRC = "formats/export_groups.jsonl"
GOLD = ["42", "4.5", "12"]
QUESTIONS = ("What is 6*7?", "Half of 9 is?", "What is 20-8?")
SYSTEM = "Answer with a number."
PACKAGE = {"datasets4": "datasets==4.0.*", "verl": "verl==0.9.1", "llamafactory": "llamafactory==0.9.5",
           "openrlhf": "openrlhf==0.11.2"}
# layout -> the gradeset command that writes it from graded groups
HOW = {"trl-dpo": "dpo", "seed002": "dpo", "trl-sft": "sft", "trl-kto": "kto", "sharegpt": "sft", "alpaca": "sft",
       "gsm8k": "sft", "trl-prompt": "grpo", "verl": "grpo", "openrlhf": "grpo", "group": None, "seed000": None,
       "seed003": None, "generations": None}


def rows_of(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def export(src: Path, out: Path, layout: str, kind: str | None = None) -> Path:
    kind = HOW.get(layout) if kind is None else kind
    cmd = (["build", kind, str(src), "--out", str(out), "--to", layout] if kind
           else ["convert", str(src), str(out), "--to", layout])
    assert main(cmd) == 0, cmd
    return out


def consumer_python(name: str) -> str:
    root = os.environ.get("GRADESET_CONSUMER_VENVS")
    for cand in ([Path(root) / f"exports-{name}", Path(root) / name] if root else []):
        if (cand / "bin" / "python").exists():
            return str(cand / "bin" / "python")
    from conftest import skip_unless

    skip_unless(False, "consumers", f"{PACKAGE[name]} not installed: run tests/consumers/install.sh DIR and set "
                "GRADESET_CONSUMER_VENVS=DIR")
    raise AssertionError("unreachable")


def run_loader(name: str, script: str, *args) -> dict | list:
    py = consumer_python(name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    proc = subprocess.run([py, str(HERE / script), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def covers(loaded, original) -> bool:
    """``loaded`` holds every value of ``original`` in place (Arrow may add keys set to None)."""
    if isinstance(original, dict):
        return isinstance(loaded, dict) and all(covers(loaded.get(k), v) for k, v in original.items()) and all(
            v is None for k, v in loaded.items() if k not in original)
    if isinstance(original, list):
        return isinstance(loaded, list) and len(loaded) == len(original) and all(
            covers(a, b) for a, b in zip(loaded, original))
    return loaded == original


SPARSE = [  # per-sample values only some samples have: the case datasets 4's JSON reader shifts
    {"prompt": "p1", "answer": 1, "responses": [{"text": "a", "correct": True}, {"text": "b",
                                                 "meta": {"negative": "refusal", "finish_reason": "length"}}]},
    {"prompt": "p2", "answer": "x", "responses": [{"text": "c", "meta": {"negative": "wrong-answer"}},
                                                  {"text": "d", "correct": False}]},
]


def all_exports(data_dir: Path, tmp_path: Path) -> list[Path]:
    files = [export(data_dir / SRC, tmp_path / f"{layout}.{ext}", layout)
             for layout in sorted(HOW) for ext in ("jsonl", "parquet")]
    sparse = tmp_path / "sparse-groups.jsonl"
    sparse.write_bytes(b"".join(orjson.dumps(g) + b"\n" for g in SPARSE))
    return files + [export(sparse, tmp_path / "sparse.jsonl", "generations")]


# ------------------------------------------------------------------------------ HF datasets

def _check_datasets(report: list[dict], files: list[Path]) -> None:
    assert len(report) == len(files)
    for item, path in zip(report, files, strict=True):
        original = rows_of(path)
        assert len(item["rows"]) == len(original), item["file"]
        for got, want in zip(item["rows"], original, strict=True):
            assert covers(got, want), (item["file"], got, want)
        assert all(isinstance(r.get("answer"), str | None) for r in item["rows"]), item["file"]


def test_datasets_5_loads_every_export(data_dir, tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        from load_datasets import load
    finally:
        sys.path.remove(str(HERE))
    files = all_exports(data_dir, tmp_path)
    _check_datasets([load(str(f)) for f in files], files)


def test_datasets_4_loads_every_export(data_dir, tmp_path):
    consumer_python("datasets4")
    files = all_exports(data_dir, tmp_path)
    report = run_loader("datasets4", "load_datasets.py", *files)
    assert report[0]["version"].startswith("4.")
    _check_datasets(report, files)


# ------------------------------------------------------------------------------ TRL

def test_trl_reads_every_trl_export_with_its_own_data_utils(data_dir, tmp_path, tiny_model_dir):
    datasets = pytest.importorskip("datasets")
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template, maybe_extract_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for layout, kind in (("trl-sft", "sft"), ("trl-dpo", "dpo"), ("trl-prompt", "grpo"), ("trl-kto", "kto")):
        for conv in (False, True):
            out = tmp_path / f"{layout}-{conv}.jsonl"
            cmd = ["build", kind, str(data_dir / SRC), "--out", str(out)] + (["--conversational"] if conv else [])
            assert main(cmd) == 0
            ds = datasets.load_dataset("json", data_files=str(out), split="train")
            for ex in ds:
                assert is_conversational(ex) == conv or (layout == "trl-prompt" and not conv), (layout, ex)
                applied = maybe_apply_chat_template(maybe_extract_prompt(ex), tok)
                assert any(q in applied["prompt"] for q in QUESTIONS), (layout, applied)
                if conv:  # the system prompt generate recorded reaches the chat template
                    assert SYSTEM in applied["prompt"], (layout, applied)


# ------------------------------------------------------------------------------ verl

def test_verl_rlhf_dataset_and_default_reward(data_dir, tmp_path, tiny_model_dir):
    consumer_python("verl")
    out = export(data_dir / SRC, tmp_path / "train.parquet", "verl")
    report = run_loader("verl", "load_verl.py", out, tiny_model_dir)
    rows = report["rows"]
    assert [r["data_source"] for r in rows] == ["lighteval/MATH", "openai/gsm8k", "lighteval/MATH"]
    assert [r["ground_truth"] for r in rows] == GOLD
    assert all(r["right"] == 1.0 and r["wrong"] == 0.0 for r in rows), rows  # routed, not NotImplementedError
    assert rows[0]["raw_prompt"][0] == {"role": "system", "content": SYSTEM}
    assert rows[1]["extra_info"]["task"] == "gsm8k" and rows[1]["extra_info"]["verifier"] == "gsm8k"
    assert rows[1]["extra_info"]["answer"] == "4.5"


# ------------------------------------------------------------------------------ LLaMA-Factory

@pytest.mark.parametrize("layout,kind", [("sharegpt", "sft"), ("sharegpt", "dpo"), ("alpaca", "sft"),
                                         ("alpaca", "dpo")])
def test_llamafactory_converter_reads_export_through_dataset_info(layout, kind, data_dir, tmp_path):
    consumer_python("llamafactory")
    name = f"{layout}_{kind}"
    export(data_dir / SRC, tmp_path / f"{name}.jsonl", layout, kind)
    report = run_loader("llamafactory", "load_llamafactory.py", tmp_path, name)
    assert report["ranking"] is (kind == "dpo") and report["formatting"] == layout
    assert len(report["rows"]) == 3
    for row in report["rows"]:
        # what LLaMA-Factory's supervised / pairwise processors accept (else "Cannot find valid samples")
        assert len(row["_prompt"]) % 2 == 1 and row["_prompt"][-1]["role"] == "user"
        assert len(row["_response"]) == (2 if kind == "dpo" else 1)
        assert row["_response"][0]["content"].startswith("The answer is") and row["_response"][0]["content"]
        assert row["_system"] == SYSTEM
    if kind == "dpo":
        assert report["rows"][0]["_response"][1]["content"] == "The answer is 41."


# ------------------------------------------------------------------------------ OpenRLHF

def test_openrlhf_datasets_read_export_with_printed_flags(data_dir, tmp_path, capsys):
    consumer_python("openrlhf")
    files = {k: export(data_dir / SRC, tmp_path / f"{k}.jsonl", "openrlhf", kind)
             for k, kind in (("sft", "sft"), ("dpo", "dpo"), ("ppo", "grpo"))}
    err = capsys.readouterr().err
    assert "--data.output_key output" in err and "--data.prompt_key input" in err and "--data.label_key label" in err
    sft = run_loader("openrlhf", "load_openrlhf.py", files["sft"], "sft")["rows"]
    assert sft[0] == {"prompt": "User: What is 6*7?\nAssistant: ", "response": "The answer is 42."}
    dpo = run_loader("openrlhf", "load_openrlhf.py", files["dpo"], "dpo")["rows"]
    assert dpo[0] == {"prompt": "What is 6*7?", "chosen": "The answer is 42.", "rejected": "The answer is 41."}
    ppo = run_loader("openrlhf", "load_openrlhf.py", files["ppo"], "ppo")["rows"]
    assert [r["label"] for r in ppo] == GOLD
    assert [r["datasource"] for r in ppo] == ["synth:arithmetic", "gsm8k", "synth:arithmetic"]
