"""Seed 004's reasoning traces: sample up to N attempts per prompt, keep the first correct.

Attempts are drawn in rounds: round r samples one more attempt (``per_round`` more) for
the prompts that have no correct attempt yet, so an easy prompt costs one generation
instead of ``max_attempts``. Every sample lands in a request cache beside the output
(the generation engine's), which makes each round add only the new sample index and a
re-run after a crash resume where it stopped. Picking the example and the seed's stats
(``total_samples``, ``grpo_successes``, ``fallback_count``, ``success_rate``,
``avg_attempts_for_successes``, ``avg_attempts_overall``) is ``gradeset.shape.first_correct``:
the same code as ``gradeset build sft --strategy first-correct``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def _solved(group: dict) -> bool:
    return any(r.get("correct") for r in group.get("responses") or [])


def sample_until_correct(groups: list[dict], cfg: Any, *, task: str | None, max_attempts: int = 5,
                         per_round: int = 1, cache_path: str | os.PathLike | None = None, workers: int = 1,
                         timeout: float = 5.0, log: Callable[[str], None] | None = None) -> tuple[list[dict], dict]:
    """Groups with up to max_attempts graded responses each, stopping early once one is right.

    Returns (groups, info) where info counts generations and rounds.
    """
    from gradeset.evaluate.runner import grade
    from gradeset.generate import generate_groups

    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    per_round = max(1, min(per_round, max_attempts))
    base = [{**g, "responses": []} for g in groups]
    current: list[dict] = list(base)
    backend = None
    if cfg.backend in ("transformers", "vllm"):  # load the model once for every round
        from gradeset.generate.backends import get_backend

        backend = get_backend(cfg)
    rounds = generated = 0
    try:
        n = 0
        while n < max_attempts:
            todo = [i for i, g in enumerate(current) if not _solved(g)]
            if not todo:
                break
            n = min(max_attempts, n + per_round)
            rounds += 1
            round_cfg = cfg.model_copy(update={"n": n})
            # cumulative n: samples 0..n-2 come from the cache, only the new indices are generated
            fresh = generate_groups([base[i] for i in todo], round_cfg, cache_path=cache_path, backend=backend)
            fresh = grade(fresh, task, workers=workers, timeout=timeout, regrade=True)
            for i, g in zip(todo, fresh, strict=True):
                generated += max(0, len(g.get("responses") or []) - len(current[i].get("responses") or []))
                current[i] = g
            if log is not None:
                solved = sum(1 for g in current if _solved(g))
                log(f"round {rounds}: {len(todo)} prompts sampled, {solved}/{len(current)} solved")
    finally:
        if backend is not None and hasattr(backend, "close"):
            backend.close()
    return current, {"rounds": rounds, "generated": generated}


def make_traces(groups: list[dict], cfg: Any, *, task: str | None, max_attempts: int = 5, per_round: int = 1,
                fallback: str | None = "reference", cache_path: str | os.PathLike | None = None, workers: int = 1,
                timeout: float = 5.0, log: Callable[[str], None] | None = None) -> tuple[list[dict], dict, list[dict]]:
    """(trace examples, seed 004 stats, all graded groups)."""
    from gradeset.shape import first_correct

    graded, info = sample_until_correct(groups, cfg, task=task, max_attempts=max_attempts, per_round=per_round,
                                        cache_path=cache_path, workers=workers, timeout=timeout, log=log)
    rows, stats = first_correct(graded, fallback=fallback, max_attempts=max_attempts)
    stats = {**stats, "max_attempts": max_attempts, "temperature": cfg.temperature, "model": cfg.model,
             "backend": cfg.backend, "task": task, "rounds": info["rounds"], "generations": info["generated"]}
    return rows, stats, graded
