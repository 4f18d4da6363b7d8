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
    single_response,
    split_transcript,
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
        g = {"prompt": prompt, **pass_through(row, {"conversations"})}
        g["responses"] = [{"text": tail[0]["content"] if len(tail) == 1 else tail}] if tail else []
        yield finish(g)


def sharegpt_from_groups(groups: Iterable[dict], system_prompt: str | None = None, **_) -> Iterator[dict]:
    for g in groups:
        r = single_response(g, "sharegpt", "pick one per prompt with `gradeset build sft`")
        msgs = prompt_messages(g.get("prompt"), system_prompt)
        if r is not None:
            text = r.get("text")
            msgs += [dict(m) for m in text] if is_messages(text) else [{"role": "assistant",
                                                                          "content": response_text(r)}]
        conv = [{"from": TO_FROM.get(m["role"], m["role"]), "value": content_text(m.get("content"))} for m in msgs]
        row = {"conversations": conv}
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "conversations")})
        yield row


def _detect_alpaca(fields: frozenset[str], row: dict) -> int:
    return 100 if {"instruction", "output"} <= fields else 0


def alpaca_to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        bad = next((k for k in ("instruction", "output") if not isinstance(row.get(k), str)), None)
        if bad is None and row.get("input") is not None and not isinstance(row["input"], str):
            bad = "input"
        if bad:
            v = row.get(bad)
            ctx.reject(loc, f"{bad}: missing" if v is None else f"{bad}: expected a string, got {type(v).__name__}",
                       row)
            continue
        inp = row.get("input") or ""
        prompt = f"{row['instruction']}\n\n{inp}" if inp else row["instruction"]
        g = {"prompt": prompt, **pass_through(row, {"instruction", "input", "output"})}
        if inp:
            g["input"] = inp
        g["responses"] = [{"text": row["output"]}]
        yield finish(g)


def alpaca_from_groups(groups: Iterable[dict], system_prompt: str | None = None, **_) -> Iterator[dict]:
    for g in groups:
        r = single_response(g, "alpaca", "pick one per prompt with `gradeset build sft`")
        if r is None:
            raise ExportError(f"group {g.get('id')}: has no response; an Alpaca row needs an output")
        prompt = prompt_text(g.get("prompt"))
        inp = g.get("input") or ""
        instruction = prompt[: -len(inp) - 2] if inp and prompt.endswith(f"\n\n{inp}") else prompt
        if not (inp and prompt.endswith(f"\n\n{inp}")):
            inp = ""
        row = {"instruction": instruction, "input": inp, "output": response_text(r)}
        if system_prompt:
            row["system"] = system_prompt
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "input", "instruction",
                                                             "output")})
        yield row


register(Layout("sharegpt", "ShareGPT: conversations[{from, value}]", _detect_sharegpt, sharegpt_to_groups,
                sharegpt_from_groups))
register(Layout("alpaca", "Alpaca: instruction, input, output", _detect_alpaca, alpaca_to_groups,
                alpaca_from_groups))
