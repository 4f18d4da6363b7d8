"""A verl custom reward function backed by gradeset's verifiers.

verl config::

    custom_reward_function:
      path: <site-packages>/gradeset/serve/verl_reward.py   # or any file that re-exports it
      name: compute_score            # compute_score_batch with verl's BatchRewardManager
      reward_kwargs: {task: math}    # optional: force a verifier (may be python:module:function)

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)``; it never
passes ``ability``. Which verifier grades a row, in order:

1. ``task`` from ``reward_kwargs`` (the user's config: the only place a plugin may be named);
2. the verifier gradeset wrote into ``extra_info`` (``verifier`` / ``task``) when it is a
   registered name — a row can pick a registered verifier, never code to import;
3. ``data_source`` (``openai/gsm8k`` -> gsm8k; ``lighteval/MATH``, ``math_dapo``, AIME, ... -> math);
4. math.

With ``$GRADESET_REWARD_URL`` (or ``url=`` in reward_kwargs) set, grading goes to a running
``gradeset serve``; when it cannot be reached the row is graded here instead (with a
warning), so a restarting server does not stop training. Grading here uses a killable
worker process per verifier: a hostile completion scores 0 after ``timeout`` seconds.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from gradeset.serve.client import ServerRefused, ServerUnavailable, base_url, grade_remote
from gradeset.verify.registry import VERIFIERS, canonical_task, get_verifier

log = logging.getLogger("gradeset.serve")

# data_source values verl's own datasets and preprocessing scripts write
DATA_SOURCES = {
    "openai/gsm8k": "gsm8k", "gsm8k": "gsm8k", "gsm8k_train": "gsm8k", "gsm8k_test": "gsm8k",
    "lighteval/math": "math", "digitallearninggmbh/math-lighteval": "math", "huggingfaceh4/math-500": "math",
    "math_dapo": "math", "math": "math", "math_dapo_reasoning": "math", "numina_amc_aime": "math",
    "numina_synthetic_math": "math", "numina_olympiads": "math", "numina_cn_k12": "math",
    "numina_aops_forum": "math", "numina_synthetic_amc": "math",
}
EXTRA_INFO_KEYS = ("gradeset_verifier", "verifier", "task")
DEFAULT_TIMEOUT = 5.0

_pools: dict[str, Any] = {}
_lock = threading.Lock()
_warned: set[str] = set()


def _registered(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    name = canonical_task(name)
    return name if name in VERIFIERS else None


def choose_task(data_source: Any, extra_info: Any = None, task: str | None = None) -> str:
    """The verifier name for one row (see the module docstring for the order)."""
    if task:
        return task
    if isinstance(extra_info, dict):
        for key in EXTRA_INFO_KEYS:
            found = _registered(extra_info.get(key))
            if found:
                return found
    if isinstance(data_source, str):
        mapped = DATA_SOURCES.get(data_source.lower()) or _registered(data_source)
        if mapped:
            return mapped
        if data_source.lower().startswith(("aime", "amc")):
            return "math"
    return "math"


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def _pool(task: str, timeout: float):
    """One killable worker per (verifier, time limit), kept for the life of the reward worker."""
    from gradeset.verify.pool import VerifyPool

    key = f"{task}@{timeout}"
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = VerifyPool({task: get_verifier(task)}, workers=1, timeout=timeout)
    return pool


def grade_local(task: str, pairs: list[tuple[str, Any]], timeout: float = DEFAULT_TIMEOUT) -> list[float]:
    with _lock:  # a VerifyPool is not thread-safe; verl may call from a thread pool
        verdicts = _pool(task, timeout).map([(task, s, g) for s, g in pairs])
    return [float(v.score) if v.score == v.score else 0.0 for v in verdicts]


def _as_text(solution_str: Any) -> str:
    return solution_str if isinstance(solution_str, str) else ("" if solution_str is None else str(solution_str))


def compute_score_batch(data_sources: list, solution_strs: list, ground_truths: list, extra_infos: list | None = None,
                        *, task: str | None = None, url: str | None = None, timeout: float | None = None,
                        **_: Any) -> list[float]:
    """Scores in [0, 1] for a batch (verl's BatchRewardManager passes lists)."""
    n = len(solution_strs)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * n
    timeout = float(timeout or os.environ.get("GRADESET_REWARD_TIMEOUT") or DEFAULT_TIMEOUT)
    tasks = [choose_task(d, e, task) for d, e in zip(data_sources, extra_infos, strict=True)]
    texts = [_as_text(s) for s in solution_strs]
    golds = ["" if g is None else g for g in ground_truths]
    server = base_url(url)
    if server:
        items = [{"completion": s, "gold": g, "task": t} for s, g, t in zip(texts, golds, tasks, strict=True)]
        try:
            return [float(v.get("score") or 0.0) for v in grade_remote(server, items, timeout=max(60.0, 4 * timeout))]
        except ServerUnavailable as exc:
            _warn_once("unreachable", "%s; grading in this process instead", exc)
        except ServerRefused as exc:
            _warn_once(f"refused:{exc}", "%s; grading in this process instead", exc)
    scores = [0.0] * n
    by_task: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        by_task.setdefault(t, []).append(i)
    for t, idxs in by_task.items():
        for i, s in zip(idxs, grade_local(t, [(texts[i], golds[i]) for i in idxs], timeout), strict=True):
            scores[i] = s
    return scores


def compute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
                  ) -> float:
    """verl's custom reward signature; a float in [0, 1] (timeouts and grader errors are 0)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
