"""verl's RL parquet layout: ``data_source``, ``prompt`` (chat messages), ``ability``,
``reward_model{style: "rule", ground_truth}``, ``extra_info{split, index, id, ...}``.

Written as verl's own preprocessing scripts (examples/data_preprocess/gsm8k.py) write it;
give the output a ``.parquet`` name. Reading it back is supported too, so a verl file can
be inspected, checked and converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import finish, pass_through, prompt_messages
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import is_messages, prompt_text

_MAPPED = frozenset({"prompt", "responses", "answer", "source", "task", "extra_info", "id", "split"})


def _detect(fields: frozenset[str], row: dict) -> int:
    return 100 if {"prompt", "reward_model"} <= fields and isinstance(row.get("reward_model"), dict) else 0


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        prompt = row.get("prompt")
        if not (isinstance(prompt, str) or is_messages(prompt)):
            ctx.reject(loc, "prompt: expected chat messages", row)
            continue
        rm = row.get("reward_model")
        if not isinstance(rm, dict) or "ground_truth" not in rm:
            ctx.reject(loc, "reward_model.ground_truth: missing", row)
            continue
        g = {"prompt": prompt, "answer": rm["ground_truth"],
             **pass_through(row, {"prompt", "reward_model", "data_source", "ability", "extra_info"})}
        if rm.get("style", "rule") != "rule":
            g["reward_style"] = rm.get("style")
        if row.get("data_source") is not None:
            g["source"] = row["data_source"]
        if row.get("ability") is not None:
            g["task"] = row["ability"]
        info = dict(row.get("extra_info") or {})
        if info.get("id") is not None:
            g["id"] = info.pop("id")
        if info.get("question") == prompt_text(prompt):
            del info["question"]  # written by the exporter from the prompt: not extra information
        if info:
            g["extra_info"] = info
        yield finish(g)


def from_groups(groups: Iterable[dict], system_prompt: str | None = None, split: str | None = None,
                **_) -> Iterator[dict]:
    """verl rows; the prompt is always chat messages (verl applies the chat template)."""
    for i, g in enumerate(groups):
        info = dict(g.get("extra_info") or {})
        info.setdefault("split", split or g.get("split") or "train")
        info.setdefault("index", i)
        info["id"] = g.get("id")
        info.setdefault("question", prompt_text(g.get("prompt")))
        answer = g.get("answer")
        row = {
            "data_source": g.get("source") or "gradeset",
            "prompt": prompt_messages(g.get("prompt"), system_prompt),
            "ability": g.get("task") or "math",
            "reward_model": {"style": g.get("reward_style") or "rule",
                             "ground_truth": "" if answer is None else str(answer)},
            "extra_info": info,
        }
        for k, v in g.items():
            if k not in _MAPPED and k != "reward_style":
                row[k] = v
        yield row


register(Layout("verl", "verl RL parquet: data_source/prompt/ability/reward_model/extra_info", _detect,
                to_groups, from_groups))
