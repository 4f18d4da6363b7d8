"""The canonical layout (seed 001): ``prompt`` + ``responses[{text, score, correct, ...}]``.

Also accepts prompt-only rows with ``prompt`` alone and seed 001's ``metadata`` key on
responses (stored as ``meta``; both spellings are read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import ensure_id, validate_group


def _detect(fields: frozenset[str], row: dict) -> int:
    if "responses" in fields and "prompt" in fields and isinstance(row.get("responses"), list):
        return 100
    if fields >= {"prompt", "id", "responses"}:
        return 100
    return 0


def normalize_group(row: dict) -> dict:
    """Canonical spelling of a group row (``metadata`` -> ``meta``); unknown fields kept."""
    responses = row.get("responses")
    if responses is None:
        row["responses"] = []
    elif isinstance(responses, list):
        for r in responses:
            if isinstance(r, dict) and "metadata" in r and "meta" not in r:
                r["meta"] = r.pop("metadata")
    return row


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        errors = validate_group(row)
        if errors:
            ctx.reject(loc, "; ".join(errors[:5]), row)
            continue
        yield ensure_id(normalize_group(row))


def from_groups(groups: Iterable[dict], **opts) -> Iterator[dict]:
    for g in groups:
        yield ensure_id(g)


register(Layout("group", "gradeset group: prompt + responses[{text,score,correct,...}]",
                _detect, to_groups, from_groups, aliases=("gradeset", "groups", "seed001")))
