"""Helpers shared by the layout modules: prompts, completions, common prefixes, numbers.

Kept apart from the layouts so every layout converts chat messages, completions and
gold answers the same way (a prompt written by one layout reads back identically
through another).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gradeset.errors import GradesetError
from gradeset.records import ensure_id, is_messages, prompt_text, response_text

# Fields a layout maps itself; everything else on a group is passed through as is.
STRUCTURAL = frozenset({"prompt", "responses"})


class ExportError(GradesetError):
    """A group the requested layout cannot represent; says which command shapes it first."""


def answer_text(value: Any) -> Any:
    """A gold answer as text: ints, floats and bools become strings, text and None stay.

    Trainers' Arrow tables need one type per column, and a file mixing synthetic int
    answers with loaded string ones breaks them (datasets 4's JSON reader, Parquet).
    Structured golds (alias lists, code tests) stay as they are: the verifiers read them.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def solution_text(answer) -> str:
    """A gold answer as a solution string math-verify parses (``\\boxed{...}``), unless it is one."""
    text = str(answer_text(answer)) if not isinstance(answer, list | dict) else json.dumps(answer)
    return text if "\\boxed" in text or "$" in text else f"\\boxed{{{text}}}"


def stringify_answers(row: dict, keys: tuple[str, ...] = ("answer", "solution")) -> dict:
    """The row with its scalar ``answer`` / ``solution`` written as text (see ``answer_text``)."""
    for k in keys:
        if k in row:
            row[k] = answer_text(row[k])
    return row


def system_of(group: dict, response: dict | None = None) -> str | None:
    """The system prompt a group's response was generated with.

    ``generate`` records it on the group (``system_prompt``) and on each response
    (``meta.system_prompt``); the response's own value wins (it is what that sample saw).
    """
    if isinstance(response, dict):
        meta = response.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("system_prompt"), str) and meta["system_prompt"]:
            return meta["system_prompt"]
    sp = group.get("system_prompt")
    return sp if isinstance(sp, str) and sp else None


def check_role_list(value: Any) -> bool:
    return is_messages(value)


def prompt_messages(prompt: Any, system_prompt: str | None = None) -> list[dict]:
    """A prompt as chat messages, with the system prompt first when given and absent."""
    if is_messages(prompt):
        msgs = [dict(m) for m in prompt]
    else:
        msgs = [{"role": "user", "content": "" if prompt is None else str(prompt)}]
    if system_prompt and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def prompt_value(prompt: Any, conversational: bool = False, system_prompt: str | None = None) -> Any:
    """A prompt in TRL's standard (string) or conversational (messages) form.

    A prompt that already is a conversation stays one (flattening it would lose turns).
    """
    if conversational or is_messages(prompt):
        return prompt_messages(prompt, system_prompt)
    text = prompt_text(prompt)
    return f"{system_prompt}\n\n{text}" if system_prompt else text


def system_prompt_value(prompt: Any, conversational: bool, flag: str | None,
                        recorded: str | None) -> tuple[Any, bool]:
    """(prompt value, whether the recorded system prompt went into it).

    ``flag`` (``--system-prompt``) keeps its meaning: a system turn, or a prefix for a
    string prompt. A system prompt recorded by ``generate`` becomes a system turn where the
    prompt is a conversation; a string prompt stays exactly the text the model saw and the
    exporter keeps the ``system_prompt`` column instead (prefixing would change the prompt).
    """
    if flag:
        return prompt_value(prompt, conversational, flag), False
    if recorded and (conversational or is_messages(prompt)):
        return prompt_messages(prompt, recorded), True
    return prompt_value(prompt, conversational), False


def completion_value(resp: Any, conversational: bool) -> Any:
    """A response as TRL completion: a string, or a list of assistant messages."""
    text = resp.get("text") if isinstance(resp, dict) else resp
    if is_messages(text):
        return [dict(m) for m in text] if conversational else response_text(text)
    if conversational:
        return [{"role": "assistant", "content": response_text(resp)}]
    return response_text(resp)


def completion_text(value: Any) -> Any:
    """Response text of an imported completion.

    One plain assistant message becomes its content string (so standard and
    conversational files give equal groups); anything richer (several turns, tool
    calls) is kept as the message list, never flattened.
    """
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        m = value[0]
        if set(m) == {"role", "content"} and m["role"] == "assistant" and isinstance(m["content"], str):
            return m["content"]
    return value


def split_transcript(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(prompt turns, trailing assistant turns) of a chat transcript."""
    cut = len(messages)
    while cut > 0 and messages[cut - 1].get("role") == "assistant":
        cut -= 1
    return messages[:cut], messages[cut:]


def common_prefix(a: Any, b: Any) -> Any:
    """The shared prefix of two strings or two message lists, as TRL's ``extract_prompt``.

    For strings the cut is moved back to a whitespace boundary so a word shared by
    chance ("The answer is 4" / "The answer is 45") is not split.
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    if isinstance(a, str):
        if n < len(a) or n < len(b):
            while n > 0 and not a[n - 1].isspace():
                n -= 1
        return a[:n]
    return a[:n]


def pass_through(row: dict, consumed: set[str] | frozenset[str]) -> dict:
    """The row's fields a layout does not map (kept on the group, never dropped)."""
    return {k: v for k, v in row.items() if k not in consumed}


def extras(group: dict, skip: set[str] | frozenset[str] = frozenset()) -> dict:
    """A group's pass-through fields, for exporters that write them as extra columns."""
    return {k: v for k, v in group.items() if k not in STRUCTURAL and k not in skip}


def finish(group: dict) -> dict:
    group.setdefault("responses", [])
    return ensure_id(group)


def responses_of(group: dict) -> list[dict]:
    return [r for r in group.get("responses") or [] if isinstance(r, dict)]


def single_response(group: dict, layout: str, hint: str) -> dict | None:
    """The one response of a group; a clear error for groups with several."""
    rs = responses_of(group)
    if len(rs) > 1:
        raise ExportError(f"group {group.get('id')}: has {len(rs)} responses but a {layout} row holds one; "
                          f"{hint}")
    return rs[0] if rs else None


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def final_number(text: str) -> str | None:
    """The last number in text with thousands commas removed ("1,234" -> "1234")."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    num = found[-1].replace(",", "")
    return num


def gsm8k_answer(text: str) -> tuple[str, bool]:
    """(answer, had_marker) of a GSM8K solution: the final number after ``####``."""
    if "####" not in text:
        return text.strip(), False
    tail = text.rsplit("####", 1)[1].strip()
    num = final_number(tail)
    return (num if num is not None else tail), True


def is_number_text(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"-?\d+(?:\.\d+)?", value.strip()))
