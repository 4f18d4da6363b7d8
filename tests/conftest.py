"""Shared fixtures. Heavy ones (the tiny model) are built once per session, on demand."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS))
os.environ.setdefault("GRADESET_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A locally built Qwen2 (hidden size 8) + ChatML tokenizer folder; skips without torch."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def required_tools() -> set[str]:
    """Tools the environment promises (``GRADESET_REQUIRE="chromium,bwrap"``, set by ``.ci/run`` in CI)."""
    return {t.strip().lower() for t in os.environ.get("GRADESET_REQUIRE", "").split(",") if t.strip()}


def skip_unless(available: bool, tool: str, reason: str) -> None:
    """Skip for a missing optional tool, or fail when the environment said it is there.

    A skip may only name a missing dependency; where CI installed the tool, its absence is
    a broken install and must turn the run red, not quietly skip the tests that need it.
    """
    if available:
        return
    if tool.lower() in required_tools():
        pytest.fail(f"{reason}, but GRADESET_REQUIRE lists {tool!r}: the install it relies on failed")
    pytest.skip(reason)


def pytest_collection_modifyitems(session, config, items):
    """Run the two-node cluster tests before any test that starts a local Ray session.

    A driver that has run a local Ray session (``ray.init()`` then ``ray.shutdown()``)
    keeps Ray Data state owned by that dead session; connecting it to a new cluster then
    fails with ``OwnerDiedError``. Alphabetical order gave the right order by luck until
    ``test_distributed_programs.py`` grew a Ray test; this makes it explicit.
    """
    first = [i for i in items if i.nodeid.startswith("tests/test_ray_cluster.py")]
    if first:
        items[:] = first + [i for i in items if i not in first]
