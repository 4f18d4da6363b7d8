"""Request bodies in, grading items out; verdicts in, response bodies out. No I/O here.

Every field of a request is hostile: it may be the wrong type, huge, deeply nested or name
code to import. Parsing therefore checks types and lengths and turns each problem into a
:class:`RequestError` (a 4xx with a one-line message). A request may pick a verifier only
among those the server was started with, by name: nothing in a request is ever imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gradeset.io.nesting import too_deep
from gradeset.verify.verdict import Verdict


class RequestError(Exception):
    """A client mistake: answered with ``status`` and ``{"error": message}``; the server goes on."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Item:
    """One completion to grade with the verifier registered under ``task``."""

    task: str
    completion: str
    gold: Any


def parse_json(body: bytes) -> Any:
    """JSON from the raw body; malformed, non-UTF-8 or absurdly nested bodies are a 400."""
    if not body:
        raise RequestError(400, "empty body: expected a JSON object")
    try:
        data = orjson.loads(body)  # depth-limited (1024), so the parse itself cannot blow the stack
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise RequestError(400, "malformed JSON: nested too deeply") from None
        if "UTF-8" in str(exc):
            raise RequestError(400, f"body is not UTF-8 JSON: {exc}") from None
        raise RequestError(400, f"malformed JSON: {exc}") from None
    # verifiers walk golds recursively (and repr/== recurse in C): keep the readers' limit
    if too_deep(data) is not None:
        raise RequestError(400, "malformed JSON: nested too deeply")
    return data


def _string_list(body: dict, key: str, *, required: bool) -> list[str] | None:
    value = body.get(key)
    if value is None:
        if required:
            raise RequestError(400, f"missing field {key!r}: expected a list of strings")
        return None
    if not isinstance(value, list):
        raise RequestError(400, f"field {key!r}: expected a list of strings, got {type(value).__name__}")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise RequestError(400, f"field {key!r}[{i}]: expected a string, got {type(v).__name__}")
    return value


def _gold(value: Any, where: str) -> Any:
    """Golds are plain JSON data (strings, numbers, or test-case objects for code); never code."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | dict | list | type(None)):
        raise RequestError(400, f"{where}: expected a string or number, got {type(value).__name__}")
    return value


def strip_prompt(query: str, prompt: str | None) -> tuple[str, bool]:
    """The response part of an OpenRLHF query (prompt + response as it decodes them).

    The prompt is usually an exact prefix; special tokens (a BOS, padding) may sit in
    front of it, so the first occurrence is accepted too. When the prompt is not found at
    all the whole query is graded and the caller is told (False), so it can log it.
    """
    if not prompt:
        return query, prompt is not None
    if query.startswith(prompt):
        return query[len(prompt):], True
    at = query.find(prompt)
    if at >= 0:
        return query[at + len(prompt):], True
    return query, False


def openrlhf_items(body: Any, task: str) -> tuple[list[Item], int]:
    """Items of an OpenRLHF ``/get_reward`` body, and how many queries lacked their prompt prefix.

    OpenRLHF posts ``{"query": [...], "prompts": [...], "labels": [...]}``: the decoded
    prompt+response texts, the prompts, and the dataset's label column (the golds).
    """
    if not isinstance(body, dict):
        raise RequestError(400, f"expected a JSON object with 'query', got {type(body).__name__}")
    queries = _string_list(body, "query", required=True)
    assert queries is not None
    prompts = _string_list(body, "prompts", required=False)
    labels = body.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise RequestError(400, f"field 'labels': expected a list, got {type(labels).__name__}")
    for key, col in (("prompts", prompts), ("labels", labels)):
        if col is not None and len(col) != len(queries):
            raise RequestError(400, f"field {key!r} has {len(col)} values for {len(queries)} queries")
    items, unmatched = [], 0
    for i, query in enumerate(queries):
        response, found = strip_prompt(query, prompts[i] if prompts is not None else None)
        unmatched += not found
        gold = _gold(labels[i], f"field 'labels'[{i}]") if labels is not None else None
        items.append(Item(task, response, gold))
    return items, unmatched


def grade_items(body: Any, tasks: dict[str, str], default: str) -> list[Item]:
    """Items of gradeset's own ``/v1/grade`` body: a list (or ``{"items": [...]}``) of
    ``{"completion", "gold", "task"?}``. ``tasks`` maps the names a request may use to the
    verifiers the server started with; any other name is a 400."""
    if isinstance(body, dict):
        if "items" not in body:
            raise RequestError(400, "expected a JSON list of items or an object with 'items'")
        body = body["items"]
    if not isinstance(body, list):
        raise RequestError(400, f"'items': expected a list, got {type(body).__name__}")
    items = []
    for i, row in enumerate(body):
        if not isinstance(row, dict):
            raise RequestError(400, f"items[{i}]: expected an object, got {type(row).__name__}")
        completion = row.get("completion")
        if not isinstance(completion, str):
            raise RequestError(400, f"items[{i}].completion: expected a string, got {type(completion).__name__}")
        name = row.get("task", default)
        if name is None:
            name = default
        if not isinstance(name, str):
            raise RequestError(400, f"items[{i}].task: expected a string, got {type(name).__name__}")
        key = tasks.get(name)
        if key is None:
            raise RequestError(400, f"items[{i}].task {name[:80]!r}: this server grades only "
                                    f"{', '.join(sorted(tasks))} (verifiers are chosen when it starts)")
        items.append(Item(key, completion, _gold(row.get("gold", row.get("answer")), f"items[{i}].gold")))
    return items


def is_timeout(v: Verdict) -> bool:
    return (v.detail or "").startswith("timeout")


def reward_of(v: Verdict) -> float:
    """A training reward is always a number: a grader timeout or error is 0, like a wrong answer."""
    try:
        score = float(v.score)
    except (TypeError, ValueError):
        return 0.0
    return score if score == score else 0.0  # NaN -> 0


def openrlhf_response(verdicts: list[Verdict]) -> dict:
    """``rewards`` (what every OpenRLHF version reads), ``scores`` and numeric ``extra_logs``
    (read by newer ones, logged per sample)."""
    rewards = [reward_of(v) for v in verdicts]
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {
            "correct": [1.0 if v.correct else 0.0 for v in verdicts],
            "parsed": [0.0 if v.parsed is None else 1.0 for v in verdicts],
            "grader_timeout": [1.0 if is_timeout(v) else 0.0 for v in verdicts],
        },
    }


def verdict_json(v: Verdict) -> dict:
    return {"score": reward_of(v), "correct": bool(v.correct), "parsed": v.parsed, "detail": v.detail}


def grade_response(verdicts: list[Verdict]) -> dict:
    return {"verdicts": [verdict_json(v) for v in verdicts]}
