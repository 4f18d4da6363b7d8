"""OpenRLHF's dataset columns: ``input`` (+ ``output``), ``chosen`` / ``rejected``, ``label``, ``datasource``.

One layout for its three trainers, chosen per group by what the group holds: a prompt-only
group is a PPO / REINFORCE prompt (``input``, ``label`` = the gold, ``datasource``), one
response an SFT row (``input``, ``output``), two responses a DPO / RM pair (``input``,
``chosen``, ``rejected``). OpenRLHF 0.11's defaults read ``input`` for SFT and PPO but no
output, label or prompt column, so ``flags(kind)`` gives the exact ``--data.*`` flags its
scripts need (``convert``/``build`` print them). The gold is always in ``label`` (text)
because OpenRLHF hands ``label`` to remote reward servers such as ``gradeset serve``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import (
    answer_text,
    completion_text,
    completion_value,
    extras,
    finish,
    pass_through,
    responses_of,
    system_of,
    system_prompt_value,
)
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import is_messages

_OWN = frozenset({"input", "output", "chosen", "rejected", "label", "datasource"})


def kind_of(row: dict) -> str:
    """Which OpenRLHF trainer a row is for: sft, dpo or ppo."""
    if "chosen" in row:
        return "dpo"
    return "sft" if "output" in row else "ppo"


def flags(kind: str, path: str, conversational: bool = False) -> str:
    """The flags OpenRLHF 0.11's script for ``kind`` needs to read a gradeset ``openrlhf`` file."""
    chat = " --data.apply_chat_template" if conversational else ""
    if kind == "sft":
        return (f"openrlhf.cli.train_sft --data.dataset {path} --data.input_key input --data.output_key output"
                + (chat or " --data.input_template 'User: {}\\nAssistant: '"))
    if kind == "dpo":
        return (f"openrlhf.cli.train_dpo --data.dataset {path} --data.prompt_key input --data.chosen_key chosen "
                f"--data.rejected_key rejected{chat}")
    return (f"openrlhf.cli.train_ppo_ray --data.prompt_dataset {path} --data.input_key input --data.label_key label"
            f"{chat} --reward.remote_url http://127.0.0.1:8000/get_reward   (gradeset serve --task TASK)")


def _detect(fields: frozenset[str], row: dict) -> int:
    if "input" not in fields or "instruction" in fields:
        return 0
    if fields & {"output", "chosen", "label", "datasource"}:
        return 90 if not {"chosen", "rejected"} <= fields else 96  # beats trl-dpo's 95 when input is there
    return 0


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        prompt = row.get("input")
        if not (isinstance(prompt, str) or is_messages(prompt)):
            ctx.reject(loc, "input: expected a string or a list of chat messages", row)
            continue
        g = {"prompt": prompt, **pass_through(row, _OWN)}
        label = row.get("label")
        if label is not None and label != "":
            g["answer"] = label
        if isinstance(row.get("datasource"), str) and row["datasource"] != "default":
            g.setdefault("source", row["datasource"])
        if "chosen" in row or "rejected" in row:
            pair = [row.get("chosen"), row.get("rejected")]
            if not all(isinstance(p, str) or is_messages(p) for p in pair):
                ctx.reject(loc, "chosen/rejected: expected strings or lists of chat messages", row)
                continue
            g["responses"] = [{"text": completion_text(pair[0]), "score": 1.0},
                              {"text": completion_text(pair[1]), "score": 0.0}]
        elif "output" in row:
            if not (isinstance(row["output"], str) or is_messages(row["output"])):
                ctx.reject(loc, "output: expected a string or a list of chat messages", row)
                continue
            g["responses"] = [{"text": completion_text(row["output"])}]
        yield finish(g)


def from_groups(groups: Iterable[dict], conversational: bool = False, system_prompt: str | None = None,
                data_source: str | None = None, **_) -> Iterator[dict]:
    for g in groups:
        rs = responses_of(g)
        if len(rs) > 2:
            from gradeset.formats._util import ExportError

            raise ExportError(f"group {g.get('id')}: has {len(rs)} responses; an openrlhf row holds a prompt, one "
                              "response (SFT) or a pair (DPO). Shape it with `gradeset build sft|dpo|grpo` first")
        conv = conversational or is_messages(g.get("prompt")) or any(is_messages(r.get("text")) for r in rs)
        prompt, used = system_prompt_value(g.get("prompt"), conv, system_prompt, system_of(g, rs[0] if rs else None))
        row: dict = {"input": prompt}
        if len(rs) == 2:
            c, r = rs
            sc, sr = c.get("score"), r.get("score")
            if isinstance(sc, int | float) and isinstance(sr, int | float) and sr > sc:
                c, r = r, c
            row["chosen"], row["rejected"] = completion_value(c, conv), completion_value(r, conv)
        elif rs:
            row["output"] = completion_value(rs[0], conv)
        gold = answer_text(g.get("answer"))
        row["label"] = "" if gold is None else gold if isinstance(gold, str) else str(gold)
        src = g.get("source") if isinstance(g.get("source"), str) and g.get("source") else None
        row["datasource"] = data_source or src or "default"
        row.update(extras(g, _OWN | {"answer", "source"} | ({"system_prompt"} if used else set())))
        yield row


register(Layout("openrlhf", "OpenRLHF: input + output | chosen/rejected | label, datasource", _detect, to_groups,
                from_groups, aliases=("open-rlhf",)))
