"""``examples/learning/run.py`` wires gradeset's own loop into the GRPO stage: the prompts it
trains on are the ones whose samples were neither all right nor all wrong, and its
``results.json`` has the shape the docs promise. (Whether GRPO *learns* is
``tests/test_learning.py``'s job; this runs two steps on 48 prompts.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parent.parent


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_grpo_stage_trains_on_curated_mixed_prompts(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADESET_NO_PROGRESS": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "learning" / "run.py"), "--out", str(tmp_path),
                        "--seed", "3", "--stages", "base,grpo", "--prompts", "48", "--grpo-steps", "2",
                        "--grpo-batch", "16"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    base, grpo = results["stages"]["base"], results["stages"]["grpo"]
    assert 0.3 < base["accuracy"] < 0.6  # the embedded model, on its packaged held-out questions
    assert 0.0 <= grpo["accuracy"] <= 1.0 and grpo["steps"] == 2 and grpo["seconds"] > 0

    graded = {g["prompt"]: [r["correct"] for r in g["responses"]]
              for g in _lines(tmp_path / "data" / "grpo_graded.jsonl")}
    assert len(graded) == 48 and all(len(v) == 8 for v in graded.values())
    mixed = {p for p, c in graded.items() if any(c) and not all(c)}
    kept = [row["prompt"] for row in _lines(tmp_path / "data" / "grpo_prompts.jsonl")]
    # exactly the mixed groups: an all-right or all-wrong group gives GRPO no gradient
    assert sorted(kept) == sorted(mixed) and 0 < len(kept) < 48
    assert grpo["curation"] == {"prompts": len(kept), "of": 48, "cpu_seconds": grpo["curation"]["cpu_seconds"]}
    train_cmd = next(c["command"] for c in results["commands"] if c["command"].startswith("gradeset train grpo"))
    assert "grpo_prompts.jsonl" in train_cmd and "gradient_checkpointing=false" in train_cmd


def test_grpo_rounds_recurate_with_the_model_the_previous_round_trained(tmp_path):
    """Each round curates its own slice of the prompts with the model it starts from (a prompt's
    mix of right and wrong samples belongs to a model), and trains on from that model."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADESET_NO_PROGRESS": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "learning" / "run.py"), "--out", str(tmp_path),
                        "--seed", "1", "--stages", "grpo", "--prompts", "64", "--grpo-steps", "2",
                        "--grpo-batch", "16", "--grpo-rounds", "2"], capture_output=True, text=True, timeout=600,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    grpo = results["stages"]["grpo"]
    assert grpo["steps"] == 2 and [c["of"] for c in grpo["curation"]["rounds"]] == [32, 32]
    data = tmp_path / "data"
    slices = [{row["prompt"] for row in _lines(data / f"prompts_r{k}.jsonl")} for k in (1, 2)]
    assert len(slices[0]) == len(slices[1]) == 32 and not slices[0] & slices[1]
    for k, part in zip((1, 2), slices, strict=True):
        graded = {g["prompt"]: [x["correct"] for x in g["responses"]] for g in _lines(data / f"grpo_graded_r{k}.jsonl")}
        assert set(graded) == part
        kept = sorted(row["prompt"] for row in _lines(data / f"grpo_prompts_r{k}.jsonl"))
        assert kept == sorted(p for p, c in graded.items() if any(c) and not all(c))
        assert grpo["curation"]["rounds"][k - 1]["prompts"] == len(kept)

    commands = [c["command"] for c in results["commands"]]
    generates = [c for c in commands if c.startswith("gradeset generate")]
    trains = [c for c in commands if c.startswith("gradeset train grpo")]
    round1_model = str(tmp_path / "grpo_r1" / "model")
    assert "--model gradeset:arith-tiny" in generates[0] and "--model gradeset:arith-tiny" in trains[0]
    assert f"--model {round1_model}" in generates[1] and f"--model {round1_model}" in trains[1]
    # held-out questions are only evaluated after the last round
    assert "--eval-data" not in trains[0] and "--eval-data" in trains[1]
