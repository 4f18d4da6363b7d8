"""Training data for each method: TRL-ready rows as they are, gradeset groups shaped first.

A file already in a TRL layout (``messages`` / ``prompt``+``completion`` for SFT,
``chosen``/``rejected`` for DPO, ``completion``+``label`` for KTO, ``prompt`` for the
GRPO family) is used unchanged. Anything else is read as gradeset groups (any layout
``gradeset.formats`` knows) and shaped with ``gradeset.shape`` (the same code as
``gradeset build``), so ``gradeset train grpo --data graded.jsonl`` just works.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from gradeset.errors import GradesetError

READY = {
    "sft": ({"messages"}, {"prompt", "completion"}, {"text"}),
    "preference": ({"chosen", "rejected"},),
    "unpaired": ({"prompt", "completion", "label"},),
    "online": ({"prompt"},),
}
GROUP_MARKERS = {"responses", "completions", "positive", "negative", "question", "correctness_label"}
LAYOUT = {"sft": "trl-sft", "preference": "trl-dpo", "unpaired": "trl-kto", "online": "trl-prompt"}


def is_ready(rows: list[dict], kind: str) -> bool:
    """True when the rows are already what the trainer reads (no shaping needed).

    Only the method's own TRL layout qualifies: a verl parquet also has a ``prompt`` column,
    but its gold sits in ``reward_model.ground_truth`` where no reward function looks.
    """
    if not rows:
        return False
    from gradeset.formats.registry import detect_layout

    try:
        if detect_layout(rows) != LAYOUT[kind]:
            return False
    except GradesetError:
        pass
    keys = set(rows[0])
    if kind == "online" and keys & GROUP_MARKERS:
        return False  # groups with responses: drop responses (shape), keep prompt + reward columns
    if kind == "sft" and "responses" in keys:
        return False
    return any(req <= keys for req in READY[kind])


def _normalise(rows: Iterable[dict], kind: str) -> list[dict]:
    """Arrow needs one type per column: answers become text, empty response lists go."""
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if not (k == "responses" and not v)}
        if "answer" in r and r["answer"] is not None and not isinstance(r["answer"], str):
            r["answer"] = str(r["answer"]) if not isinstance(r["answer"], list | dict) else r["answer"]
        if kind == "unpaired" and "label" in r:
            r["label"] = bool(r["label"])
        out.append(r)
    return out


def shape_rows(groups: list[dict], kind: str, *, system_prompt: str | None = None,
               conversational: bool = False) -> tuple[list[dict], dict[str, Any]]:
    """Groups -> trainer rows via gradeset.shape (the code behind ``gradeset build``)."""
    from gradeset import shape
    from gradeset.shape.rows import export

    stats: dict[str, Any] = {}
    if kind == "sft" and groups and all(_is_example(g) for g in groups):
        shaped = groups  # an SFT export (ShareGPT, Alpaca, ...): each group is one example already
        stats["examples"] = len(groups)
    elif kind == "sft":
        shaped = list(shape.iter_sft(groups, "best", "reference", stats=stats))
    elif kind == "preference":
        shaped = list(shape.iter_dpo(groups, stats=stats))
    elif kind == "unpaired":
        shaped = list(shape.iter_kto(groups, stats=stats))
    else:
        shaped = list(shape.iter_grpo(groups, stats=stats))
    opts = {"conversational": conversational, "system_prompt": system_prompt}
    return list(export(shaped, LAYOUT[kind], **opts)), stats


def _is_example(group: dict) -> bool:
    """One response and no grade on it: a demonstration to imitate, not a sample to select from."""
    rs = [r for r in group.get("responses") or [] if isinstance(r, dict)]
    return len(rs) == 1 and rs[0].get("score") is None and rs[0].get("correct") is None


def load_rows(path: str | os.PathLike, kind: str, *, system_prompt: str | None = None,
              conversational: bool = False, limit: int | None = None,
              on_reject=None) -> tuple[list[dict], str]:
    """(rows for the trainer, how they were obtained) from any file gradeset reads.

    Unreadable lines go to on_reject (the command's reject file), never silently away.
    """
    from gradeset.formats import read_groups
    from gradeset.io import iter_rows, peek_rows

    if not os.path.exists(path):
        raise GradesetError(f"{path}: no such file or folder")
    sample = peek_rows(path, 8)
    if not sample:
        raise GradesetError(f"{path}: no rows")
    if is_ready(sample, kind):
        rows = [r for _, r in iter_rows(path, on_reject)]
        how = "used as is (TRL layout)"
    else:
        groups = list(read_groups(path, on_reject=on_reject))
        rows, stats = shape_rows(groups, kind, system_prompt=system_prompt, conversational=conversational)
        kept = {k: v for k, v in stats.items() if isinstance(v, int) and v}
        how = f"shaped from {len(groups)} groups ({', '.join(f'{k} {v}' for k, v in sorted(kept.items()))})"
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise GradesetError(f"{path}: no training rows for this method ({how})")
    return _normalise(rows, kind), how


def to_dataset(rows: list[dict], path: str | os.PathLike = "data"):
    from gradeset.errors import require

    datasets = require("datasets", "train", "gradeset train")
    try:
        return datasets.Dataset.from_list(rows)
    except Exception as exc:  # arrow type clashes -> name the column
        raise GradesetError(f"{path}: rows do not form one table ({type(exc).__name__}: {exc})") from exc
