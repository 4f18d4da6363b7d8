"""The one record shape: the *group* (a prompt plus zero or more graded responses).

Every other layout is a view of a group, so this module is the contract between all
packages. Records are plain dicts (not classes) because they stream through
millions of rows and must pickle cheaply into worker processes and Ray tasks.

Ids are content hashes, never row numbers: resume, dedup, joins and split assignment
all key on them, so the same prompt gets the same id in every run and every file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import orjson


class Message(TypedDict):
    role: str
    content: str


class Response(TypedDict, total=False):
    text: str
    score: float | None
    correct: bool | None
    parsed: str | None
    reasoning: str | None
    execution_output: str | None
    meta: dict[str, Any]


class Group(TypedDict, total=False):
    id: str
    prompt: str | list[Message]
    answer: Any
    task: str | None
    category: str | None
    difficulty: str | None
    source: str | None
    reference: str | None
    responses: list[Response]


GROUP_FIELDS = ("id", "prompt", "answer", "task", "category", "difficulty", "source", "reference", "responses")
RESPONSE_FIELDS = ("text", "score", "correct", "parsed", "reasoning", "execution_output", "meta")
ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})


def _canonical(value: Any) -> bytes:
    """Bytes that are equal exactly when two values are equal as JSON data."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def group_id(prompt: Any, answer: Any = None, source: Any = None) -> str:
    """Stable 16-hex-digit content id of (prompt, answer, source).

    The answer is hashed as text so that ``42`` read from CSV (a string) and ``42``
    read from JSON (an int) name the same group.
    """
    norm_answer = None if answer is None else str(answer)
    digest = hashlib.blake2b(_canonical([prompt, norm_answer, source]), digest_size=8)
    return digest.hexdigest()


def ensure_id(group: dict) -> dict:
    """Give a group its content id if it has none; an existing id is kept (ids are joins)."""
    if not group.get("id"):
        group["id"] = group_id(group.get("prompt"), group.get("answer"), group.get("source"))
    return group


def sample_id(group: Mapping[str, Any], sample_index: int) -> str:
    """Id of one response: the group id and the sample index."""
    return f"{group['id']}:{sample_index}"


def new_group(prompt: str | list[Message], answer: Any = None, **fields: Any) -> dict:
    """A prompt-only group with its id; extra fields are kept as given."""
    group: dict[str, Any] = {"prompt": prompt, "answer": answer}
    group.update(fields)
    group.setdefault("responses", [])
    return ensure_id(group)


def new_response(text: str, **fields: Any) -> dict:
    """An ungraded response: score/correct/parsed stay None until a verifier fills them."""
    resp: dict[str, Any] = {"text": text, "score": None, "correct": None, "parsed": None}
    resp.update(fields)
    return resp


def is_messages(value: Any) -> bool:
    """True for a chat transcript: a non-empty list of {role, content} dicts."""
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def prompt_text(prompt: Any) -> str:
    """The text a human would call "the question": the last user turn of a chat prompt.

    Dedup, decontamination and length statistics need one string per prompt; system
    prompts are shared boilerplate and would make every prompt look alike.
    """
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if is_messages(prompt):
        users = [m for m in prompt if m.get("role") == "user"]
        turn = users[-1] if users else prompt[-1]
        return content_text(turn.get("content"))
    return str(prompt)


def content_text(content: Any) -> str:
    """Text of a message content, which may be a string or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)


def response_text(response: Any) -> str:
    """Text of a response, accepting a chat completion (list of messages) too."""
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        return content_text(response.get("text", response.get("content")))
    if is_messages(response):
        return "".join(content_text(m.get("content")) for m in response if m.get("role") == "assistant")
    return "" if response is None else str(response)


def scores(group: Mapping[str, Any]) -> list[float | None]:
    """The score of each response, None where ungraded."""
    return [r.get("score") for r in group.get("responses") or []]


def pass_rate(group: Mapping[str, Any]) -> float | None:
    """Share of graded responses that are correct; None when none is graded."""
    graded = [r for r in group.get("responses") or [] if r.get("correct") is not None]
    if not graded:
        return None
    return sum(1 for r in graded if r.get("correct")) / len(graded)


def bucket(group: Mapping[str, Any]) -> str:
    """Seed 003's correctness bucket: all-correct, all-wrong, mixed, or ungraded."""
    return bucket_of_flags([r.get("correct") for r in group.get("responses") or []])


def bucket_of_flags(flags: Iterable[bool | None]) -> str:
    """The bucket of correctness flags (None = ungraded, ignored)."""
    flags = [f for f in flags if f is not None]
    if not flags:
        return "ungraded"
    if all(flags):
        return "all-correct"
    if not any(flags):
        return "all-wrong"
    return "mixed"


def _check_messages(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, list) or not value:
        errors.append(f"{where}: expected a non-empty list of messages, got {type(value).__name__}")
        return
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            errors.append(f"{where}[{i}]: expected an object with role and content, got {type(m).__name__}")
            continue
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            errors.append(f"{where}[{i}].role: expected one of {sorted(ROLES)}, got {role!r}")
        if "content" not in m:
            errors.append(f"{where}[{i}].content: missing")
        elif not isinstance(m["content"], _CONTENT_TYPES):
            errors.append(f"{where}[{i}].content: expected a string, got {type(m['content']).__name__}")


_CONTENT_TYPES = (str, list, type(None))
_NUMBER = (int, float)  # a tuple, not ``int | float``: the union is rebuilt on every call


def validate_group(rec: Any) -> list[str]:
    """Every problem with one group record, each naming the field path; [] when valid.

    Messages are precise (``responses[3].score: expected a number in [0, 1] or null,
    got 'high'``) because they end up in reject files that people read.
    """
    errors: list[str] = []
    if not isinstance(rec, dict):
        return [f"record: expected a JSON object, got {type(rec).__name__}"]
    if "prompt" not in rec:
        errors.append("prompt: missing")
    else:
        prompt = rec["prompt"]
        if isinstance(prompt, str):
            pass
        elif isinstance(prompt, list):
            _check_messages(prompt, "prompt", errors)
        else:
            errors.append(f"prompt: expected a string or a list of messages, got {type(prompt).__name__}")
    if "id" in rec and rec["id"] is not None and not isinstance(rec["id"], str):
        errors.append(f"id: expected a string, got {type(rec['id']).__name__}")
    for name in ("task", "category", "difficulty", "source", "reference"):
        if rec.get(name) is not None and not isinstance(rec[name], str):
            errors.append(f"{name}: expected a string or null, got {type(rec[name]).__name__}")
    responses = rec.get("responses", [])
    if responses is None:
        responses = []
    if not isinstance(responses, list):
        errors.append(f"responses: expected a list, got {type(responses).__name__}")
        return errors
    for i, r in enumerate(responses):
        where = f"responses[{i}]"
        if not isinstance(r, dict):
            errors.append(f"{where}: expected an object, got {type(r).__name__}")
            continue
        text = r.get("text")
        if "text" not in r:
            errors.append(f"{where}.text: missing")
        elif isinstance(text, list):
            _check_messages(text, f"{where}.text", errors)
        elif not isinstance(text, str):
            errors.append(f"{where}.text: expected a string, got {type(text).__name__}")
        score = r.get("score")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, _NUMBER) or math.isnan(score):
                errors.append(f"{where}.score: expected a number in [0, 1] or null, got {score!r}")
            elif not 0.0 <= float(score) <= 1.0:
                errors.append(f"{where}.score: {score!r} is outside [0, 1]")
        correct = r.get("correct")
        if correct is not None and not isinstance(correct, bool):
            errors.append(f"{where}.correct: expected true, false or null, got {correct!r}")
        meta = r.get("meta")
        if meta is not None and not isinstance(meta, dict):
            errors.append(f"{where}.meta: expected an object, got {type(meta).__name__}")
    return errors


def iter_responses(groups: Iterable[Mapping[str, Any]]) -> Iterable[tuple[Mapping[str, Any], int, Mapping]]:
    """(group, index, response) for every response of every group."""
    for g in groups:
        for i, r in enumerate(g.get("responses") or []):
            yield g, i, r
