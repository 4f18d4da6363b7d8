"""Seed 000's ranked layout: ``prompt`` + ``completions[{text, score}]``.

Each completion becomes a response with its score; extra keys on a completion are kept
on the response. (Seed 000's ``prompt/chosen/rejected`` example is the trl-dpo layout.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from gradeset.formats._util import extras, finish, pass_through, responses_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import is_messages, response_text


def _detect(fields: frozenset[str], row: dict) -> int:
    return 100 if "completions" in fields and isinstance(row.get("completions"), list) else 0


def _check_completion(i: int, c) -> str | None:
    if not isinstance(c, dict):
        return f"completions[{i}]: expected an object with text and score, got {type(c).__name__}"
    if not isinstance(c.get("text"), str):
        return f"completions[{i}].text: expected a string, got {type(c.get('text')).__name__}"
    s = c.get("score")
    if s is not None and (isinstance(s, bool) or not isinstance(s, int | float) or math.isnan(s)
                          or not 0.0 <= s <= 1.0):
        return f"completions[{i}].score: expected a number in [0, 1] or null, got {s!r}"
    return None


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        prompt = row.get("prompt")
        if not (isinstance(prompt, str) or is_messages(prompt)):
            ctx.reject(loc, "prompt: missing" if prompt is None else
                       f"prompt: expected a string or chat messages, got {type(prompt).__name__}", row)
            continue
        comps = row.get("completions")
        if not isinstance(comps, list):
            ctx.reject(loc, f"completions: expected a list, got {type(comps).__name__}", row)
            continue
        err = next((e for e in (_check_completion(i, c) for i, c in enumerate(comps)) if e), None)
        if err:
            ctx.reject(loc, err, row)
            continue
        g = {"prompt": prompt, **pass_through(row, {"prompt", "completions"})}
        g["responses"] = [{"text": c["text"], "score": None if c.get("score") is None else float(c["score"]),
                           **pass_through(c, {"text", "score"})} for c in comps]
        yield finish(g)


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """Completions in the group's order (a ranked file stays ranked), every response key kept."""
    for g in groups:
        comps = []
        for r in responses_of(g):
            c = {"text": response_text(r), "score": r.get("score")}
            c.update({k: v for k, v in r.items() if k not in ("text", "score")})
            comps.append(c)
        yield {"prompt": g.get("prompt"), "completions": comps, **extras(g, {"completions"})}


register(Layout("seed000", "seed 000 ranked: prompt + completions[{text, score}]", _detect, to_groups,
                from_groups, aliases=("ranked", "completions")))
