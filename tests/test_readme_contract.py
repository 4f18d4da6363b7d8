"""The README quick start is two commands, and .ci/run runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_install_and_run_then_test():
    install_and_run, test = quick_start()
    assert "pip install" in install_and_run and "gradeset run examples/quickstart.yaml" in install_and_run
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    _, test = quick_start()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-1] == test


def test_quickstart_pipeline_needs_no_network_model_or_key():
    spec = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    assert "synth" in spec["source"]  # bundled data: generated on the spot
    # the only model is the one packaged with gradeset, run locally: no endpoint, no API key
    gens = [step["generate"] for step in spec["steps"] if isinstance(step, dict) and "generate" in step]
    assert gens and all(g["backend"] == "transformers" and g["model"].startswith("gradeset:") for g in gens)
    assert not any("base_url" in g for g in gens)
