"""Export of shaped groups through the formats layouts.

Shaping produces groups (pairs, single-response examples, prompt-only rows); turning
them into trainer rows is the layouts' job (``gradeset.formats``). Until a layout is
registered there, the small converters below stand in for it, so ``gradeset build``
works either way; once the layout exists it always wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gradeset.errors import GradesetError
from gradeset.records import content_text, is_messages, prompt_text, response_text

# The layout each build kind writes by default.
DEFAULT_LAYOUT = {"sft": "trl-sft", "dpo": "trl-dpo", "grpo": "trl-prompt", "kto": "trl-kto"}

_SHAPE_FIELDS = ("responses", "id", "parent_id", "prompt")


def export(groups: Iterable[dict], layout: str, **opts: Any) -> Iterator[dict]:
    """Rows of ``layout`` from groups: the registered layout, else the stand-in here."""
    from gradeset.formats import get_layout

    try:
        lay = get_layout(layout)
    except GradesetError:
        lay = None
    if lay is not None and lay.from_groups is not None:
        return lay.from_groups(groups, **opts)
    fallback = _FALLBACK.get(layout)
    if fallback is None:
        raise GradesetError(f"unknown output layout {layout!r}")
    return fallback(groups, **opts)


def _prompt_messages(prompt: Any, system_prompt: str | None) -> list[dict]:
    msgs = [dict(m) for m in prompt] if is_messages(prompt) else [{"role": "user", "content": str(prompt)}]
    if system_prompt and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def _prompt_value(g: dict, conversational: bool, system_prompt: str | None) -> Any:
    if conversational or is_messages(g.get("prompt")):
        return _prompt_messages(g.get("prompt"), system_prompt)
    text = prompt_text(g.get("prompt"))
    return f"{system_prompt}\n\n{text}" if system_prompt else text


def _completion_value(resp: Any, conversational: bool) -> Any:
    if conversational:
        return [{"role": "assistant", "content": response_text(resp)}]
    return response_text(resp)


def _extras(g: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in g.items() if k not in _SHAPE_FIELDS and k not in keys}


def _trl_dpo(groups, conversational: bool = False, system_prompt: str | None = None, **_):
    for g in groups:
        conv = conversational or is_messages(g.get("prompt"))
        c, r = g["responses"][0], g["responses"][1]
        row = {"prompt": _prompt_value(g, conv, system_prompt), "chosen": _completion_value(c, conv),
               "rejected": _completion_value(r, conv)}
        row.update({k: g.get(k) for k in ("id", "score_chosen", "score_rejected", "margin")})
        yield row


def _trl_sft(groups, conversational: bool = False, system_prompt: str | None = None, messages: bool = False,
             **_):
    for g in groups:
        resp = g["responses"][0]
        conv = conversational or messages or is_messages(g.get("prompt"))
        if messages:
            row = {"messages": _prompt_messages(g.get("prompt"), system_prompt)
                   + [{"role": "assistant", "content": response_text(resp)}]}
        else:
            row = {"prompt": _prompt_value(g, conv, system_prompt), "completion": _completion_value(resp, conv)}
        row["id"] = g.get("id")
        yield row


def _trl_prompt(groups, conversational: bool = False, system_prompt: str | None = None, **_):
    for g in groups:
        row = {"prompt": _prompt_value(g, conversational, system_prompt)}
        for k, v in g.items():
            if k not in ("prompt", "responses"):
                row[k] = v
        yield row


def _trl_kto(groups, conversational: bool = False, system_prompt: str | None = None, **_):
    for g in groups:
        conv = conversational or is_messages(g.get("prompt"))
        yield {"prompt": _prompt_value(g, conv, system_prompt),
               "completion": _completion_value(g["responses"][0], conv),
               "label": bool(g.get("label")), "id": g.get("id")}


def _gsm8k(groups, **_):
    for g in groups:
        resp = (g.get("responses") or [None])[0]
        text = response_text(resp).rstrip() if resp is not None else ""
        answer = g.get("answer")
        if answer is not None and "####" not in text:
            text = f"{text}\n\n#### {content_text(answer)}".lstrip()
        yield {"question": prompt_text(g.get("prompt")), "answer": text}


def _group(groups, **_):
    yield from groups


_FALLBACK = {"trl-dpo": _trl_dpo, "trl-sft": _trl_sft, "trl-prompt": _trl_prompt, "trl-kto": _trl_kto,
             "gsm8k": _gsm8k, "group": _group}
