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
