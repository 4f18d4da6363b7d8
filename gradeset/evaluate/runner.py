"""Evaluate: (generate) -> (grade) -> metrics -> seed 004's debug files.

The three stages are separate functions so a caller that already has graded groups
(``gradeset eval graded.jsonl``) pays for none of generation or grading, and
``gradeset train --eval-data`` reuses the same path with its freshly trained model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError
from gradeset.evaluate.metrics import compute_metrics, default_ks, parse_ks
from gradeset.evaluate.report import debug_paths, example_rows, new_run_id, write_csv, write_metrics


def needs_grading(group: Mapping[str, Any]) -> bool:
    return any(r.get("correct") is None for r in group.get("responses") or [])


def grade(groups: list[dict], task: str | None, *, workers: int = 1, timeout: float = 5.0,
          regrade: bool = False, on_untrusted: Callable[[int, dict, str], None] | None = None) -> list[dict]:
    """Fill score/correct/parsed where missing (or everywhere with regrade) via gradeset.verify.

    task None means each group's own ``task`` field; a group that needs grading and has
    neither is an error the user must fix (grading with a guessed verifier would lie).
    A group whose task field names no registered verifier (``builtins:exec``, an unknown
    name) is left ungraded, nothing is imported, and ``on_untrusted(index, group, reason)``
    is told.
    """
    todo = [i for i, g in enumerate(groups) if regrade or needs_grading(g)]
    if not todo:
        return groups
    if task is None:
        missing = [groups[i].get("id") for i in todo if not groups[i].get("task")]
        if missing:
            raise GradesetError(
                f"{len(todo)} group(s) have ungraded responses and {len(missing)} of them name no task "
                f"(first id {missing[0]}); pass --task (e.g. --task math) to grade them"
            )
    from gradeset.verify import verify_groups

    if task is None and on_untrusted is not None:
        from gradeset.verify.registry import UntrustedTask, data_task

        for i in todo:
            try:
                data_task(groups[i].get("task"))
            except UntrustedTask as exc:
                on_untrusted(i, groups[i], str(exc))
    graded = verify_groups([groups[i] for i in todo], task=task or "auto", workers=workers, timeout=timeout)
    out = list(groups)
    for i, g in zip(todo, graded, strict=True):
        out[i] = g
    return out


def generate(groups: list[dict], cfg: Any, cache_path: str | os.PathLike | None = None) -> list[dict]:
    """Sample responses for prompt-only groups (existing responses are replaced)."""
    from gradeset.generate import generate_groups

    prompts = [{**g, "responses": []} for g in groups]
    return generate_groups(prompts, cfg, cache_path=cache_path)


def save(groups: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any], *,
         out_dir: str | os.PathLike | None = None, stage: str = "eval", run_id: str | None = None,
         csv_path: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None,
         txt_path: str | os.PathLike | None = None, header: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write the per-example CSV and metrics files; returns what was written, by kind."""
    targets: dict[str, list[Path]] = {"csv": [], "txt": [], "json": []}
    if out_dir is not None:
        run_id = run_id or new_run_id()
        for kind, path in debug_paths(out_dir, stage, run_id).items():
            targets[kind].append(path)
        header = {"stage": stage, "run_id": run_id, **(header or {})}
    for kind, path in (("csv", csv_path), ("json", json_path), ("txt", txt_path)):
        if path is not None and Path(path) not in targets[kind]:
            targets[kind].append(Path(path))
    written: dict[str, Path] = {}
    for path in targets["csv"]:
        write_csv(path, example_rows(groups))
        written.setdefault("csv", path)
    for path in targets["txt"]:
        write_metrics(metrics, txt=path, header=header)
        written.setdefault("txt", path)
    for path in targets["json"]:
        write_metrics(metrics, json_path=path, header=header)
        written.setdefault("json", path)
    return written


def evaluate(groups: list[dict], *, ks: Sequence[int] | str | None = None, task: str | None = None,
             generate_cfg: Any = None, workers: int = 1, timeout: float = 5.0, regrade: bool = False,
             cache_path: str | os.PathLike | None = None,
             on_untrusted: Callable[[int, dict, str], None] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Groups in, (graded groups, metrics) out; generates first when generate_cfg is given.

    Without ks, k is 1, the group size and the powers of two between (:func:`default_ks`)."""
    ks = parse_ks(ks) if ks is not None else None
    if generate_cfg is not None:
        groups = generate(groups, generate_cfg, cache_path=cache_path)
    groups = grade(groups, task, workers=workers, timeout=timeout, regrade=regrade, on_untrusted=on_untrusted)
    return groups, compute_metrics(groups, ks if ks is not None else default_ks(groups))


def evaluate_model(model: str | os.PathLike, data: str | os.PathLike | list[dict], *, out_dir: str | os.PathLike,
                   stage: str, run_id: str | None = None, task: str | None = None,
                   ks: Sequence[int] | str | None = None, n: int | None = None, temperature: float | None = None,
                   max_tokens: int = 256, system_prompt: str | None = None, backend: str = "transformers",
                   limit: int | None = None, on_reject=None, **gen_opts: Any) -> dict[str, Any]:
    """Seed 004's evaluate_model.py: generate with a local model folder, grade, write debug/.

    n defaults to the largest k; temperature defaults to 0 (greedy) for n = 1, else 1.0.
    """
    from gradeset.generate import GenerateConfig

    ks = parse_ks(ks)
    if isinstance(data, list):
        groups = data
    else:
        from gradeset.formats import read_groups

        groups = list(read_groups(data, on_reject=on_reject))
    if limit is not None:
        groups = groups[:limit]
    n = n or max(ks)
    if temperature is None:
        temperature = 0.0 if n == 1 else 1.0
    cfg = GenerateConfig(backend=backend, model=str(model), n=n, temperature=temperature, max_tokens=max_tokens,
                         system_prompt=system_prompt, **gen_opts)
    graded, metrics = evaluate(groups, ks=ks, task=task, generate_cfg=cfg)
    run_id = run_id or new_run_id()
    header = {"model": str(model), "data": None if isinstance(data, list) else str(data), "n": n,
              "temperature": temperature, "max_tokens": max_tokens, "task": task}
    files = save(graded, metrics, out_dir=out_dir, stage=stage, run_id=run_id, header=header)
    return {"metrics": metrics, "files": {k: str(v) for k, v in files.items()}, "run_id": run_id}
