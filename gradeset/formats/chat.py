"""ShareGPT (``conversations[{from, value}]``) and Alpaca (``instruction, input, output``).

ShareGPT roles map to chat roles (human -> user, gpt -> assistant, system, tool); the
trailing assistant turn is the response and everything before it the prompt. An
Alpaca prompt is the instruction, plus the input after a blank line when there is
one (the input is also kept as a field so the row can be written back exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import (
    ExportError,
    finish,
    pass_through,
    prompt_messages,
    responses_of,
    split_transcript,
    system_of,
)
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import content_text, is_messages, prompt_text, response_text

FROM_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
             "bing": "assistant", "bard": "assistant", "model": "assistant", "system": "system",
             "tool": "tool", "function_call": "assistant", "observation": "tool", "function": "tool"}
TO_FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}


def _detect_sharegpt(fields: frozenset[str], row: dict) -> int:
    return 100 if "conversations" in fields and isinstance(row.get("conversations"), list) else 0


def sharegpt_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        conv = row.get("conversations")
        if not isinstance(conv, list) or not conv:
            ctx.reject(loc, "conversations: expected a non-empty list of {from, value} objects", row)
            continue
        msgs, err = [], None
        for i, turn in enumerate(conv):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                err = f"conversations[{i}]: expected {{from, value}} with a string value"
                break
            role = FROM_ROLE.get(str(turn.get("from", "")).lower())
            if role is None:
                err = f"conversations[{i}].from: unknown speaker {turn.get('from')!r}"
                break
            msgs.append({"role": role, "content": turn["value"]})
        if err:
            ctx.reject(loc, err, row)
            continue
        prompt, tail = split_transcript(msgs)
        if not prompt:
            ctx.reject(loc, "conversations: no human or system turn before the reply", row)
            continue
        g = {"prompt": prompt, **pass_through(row, {"conversations", "chosen", "rejected"})}
        pair = [row.get("chosen"), row.get("rejected")]
        if any(p is not None for p in pair):
            if tail or not all(isinstance(p, dict) and isinstance(p.get("value"), str) for p in pair):
                ctx.reject(loc, "chosen/rejected: expected one {from, value} reply each after the prompt turns "
                           "(LLaMA-Factory's ranking layout)", row)
                continue
            g["responses"] = [{"text": pair[0]["value"], "score": 1.0}, {"text": pair[1]["value"], "score": 0.0}]
            yield finish(g)
            continue
        g["responses"] = [{"text": tail[0]["content"] if len(tail) == 1 else tail}] if tail else []
        yield finish(g)


def _one_or_pair(g: dict, layout: str) -> tuple[dict | None, dict | None]:
    """(response, None) for an SFT row, (chosen, rejected) for a preference pair.

    A group with two responses is a pair (DESIGN.md): LLaMA-Factory's ranking rows. The
    higher score is chosen; order is kept on ties, as the trl-dpo exporter does.
    """
    rs = responses_of(g)
    if len(rs) > 2:
        raise ExportError(f"group {g.get('id')}: has {len(rs)} responses but a {layout} row holds one (SFT) or "
                          "two (a preference pair); pick them with `gradeset build sft` or `gradeset build dpo`")
    if len(rs) == 2:
        c, r = rs
        sc, sr = c.get("score"), r.get("score")
        if isinstance(sc, int | float) and isinstance(sr, int | float) and sr > sc:
            c, r = r, c
        return c, r
    return (rs[0] if rs else None), None


def _turn(m: dict) -> dict:
    return {"from": TO_FROM.get(m["role"], m["role"]), "value": content_text(m.get("content"))}


def _reply(r: dict) -> dict:
    text = r.get("text")
    if is_messages(text):
        text = "".join(content_text(m.get("content")) for m in text if m.get("role") == "assistant")
    return {"from": "gpt", "value": text if isinstance(text, str) else response_text(r)}


def sharegpt_from_groups(groups: Iterable[dict], system_prompt: str | None = None, **_) -> Iterator[dict]:
    """``conversations`` (a ``system`` turn first when there is one); a pair writes LLaMA-Factory's
    ranking row: the prompt turns, then ``chosen`` and ``rejected`` as one ``{from, value}`` each."""
    for g in groups:
        r, rejected = _one_or_pair(g, "sharegpt")
        msgs = prompt_messages(g.get("prompt"), system_prompt or system_of(g, r))
        if rejected is not None:
            row = {"conversations": [_turn(m) for m in msgs], "chosen": _reply(r), "rejected": _reply(rejected)}
        else:
            if r is not None:
                text = r.get("text")
                msgs += [dict(m) for m in text] if is_messages(text) else [{"role": "assistant",
                                                                              "content": response_text(r)}]
            row = {"conversations": [_turn(m) for m in msgs]}
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "conversations", "chosen",
                                                             "rejected", "system_prompt")})
        yield row


def _detect_alpaca(fields: frozenset[str], row: dict) -> int:
    return 100 if {"instruction", "output"} <= fields or {"instruction", "chosen", "rejected"} <= fields else 0


def alpaca_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        ranked = "output" not in row and "chosen" in row
        need = ("instruction", "chosen", "rejected") if ranked else ("instruction", "output")
        bad = next((k for k in need if not isinstance(row.get(k), str)), None)
        if bad is None and row.get("input") is not None and not isinstance(row["input"], str):
            bad = "input"
        if bad:
            v = row.get(bad)
            ctx.reject(loc, f"{bad}: missing" if v is None else f"{bad}: expected a string, got {type(v).__name__}",
                       row)
            continue
        inp = row.get("input") or ""
        prompt = f"{row['instruction']}\n\n{inp}" if inp else row["instruction"]
        g = {"prompt": prompt, **pass_through(row, {"instruction", "input", "output", "chosen", "rejected",
                                                    "system"})}
        if inp:
            g["input"] = inp
        if isinstance(row.get("system"), str) and row["system"]:
            g["system_prompt"] = row["system"]
        elif row.get("system") not in (None, ""):
            g["system"] = row["system"]
        if ranked:
            g["responses"] = [{"text": row["chosen"], "score": 1.0}, {"text": row["rejected"], "score": 0.0}]
        else:
            g["responses"] = [{"text": row["output"]}]
        yield finish(g)


def alpaca_from_groups(groups: Iterable[dict], system_prompt: str | None = None, **_) -> Iterator[dict]:
    """``instruction``, ``input``, ``output`` and ``system``; a pair writes ``chosen`` / ``rejected``
    instead of ``output`` (LLaMA-Factory's alpaca ranking rows)."""
    for g in groups:
        r, rejected = _one_or_pair(g, "alpaca")
        if r is None:
            raise ExportError(f"group {g.get('id')}: has no response; an Alpaca row needs an output")
        prompt = prompt_text(g.get("prompt"))
        inp = g.get("input") or ""
        instruction = prompt[: -len(inp) - 2] if inp and prompt.endswith(f"\n\n{inp}") else prompt
        if not (inp and prompt.endswith(f"\n\n{inp}")):
            inp = ""
        row = {"instruction": instruction, "input": inp}
        if rejected is None:
            row["output"] = response_text(r)
        else:
            row["chosen"], row["rejected"] = response_text(r), response_text(rejected)
        row["system"] = system_prompt or system_of(g, r) or _system_turn(g.get("prompt")) or ""
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "input", "instruction",
                                                             "output", "chosen", "rejected", "system",
                                                             "system_prompt")})
        yield row


def _system_turn(prompt) -> str | None:
    """The system message of a chat prompt (Alpaca has a column for it, not a turn)."""
    if is_messages(prompt):
        return next((content_text(m.get("content")) for m in prompt if m.get("role") == "system"), None)
    return None


register(Layout("sharegpt", "ShareGPT: conversations[{from, value}]", _detect_sharegpt, sharegpt_to_groups,
                sharegpt_from_groups))
register(Layout("alpaca", "Alpaca: instruction, input, output", _detect_alpaca, alpaca_to_groups,
                alpaca_from_groups))
