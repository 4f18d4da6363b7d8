"""Rows holding a prompt and a list of sampled ``generations`` (open-r1's OpenR1-Math layout).

``{"problem", "solution", "answer", "uuid", "generations": [...], "correctness_math_verify":
[...], "is_reasoning_complete": [...], "finish_reasons": [...], "correctness_count",
"messages", ...}``: each generation becomes a response. Correctness comes from
``correctness_math_verify`` (else ``correctness``); every other list with one value per
generation (``is_reasoning_complete``, ``correctness_llama``, ``finish_reasons`` ...) is
spread onto the responses' ``meta`` under its own name, so nothing is dropped and the
export can put the columns back.

The export writes OpenR1-Math-220k's columns. ``correctness_count`` and ``messages`` (the
prompt and the first correct generation) are derived at export time from the responses as
they are now, so re-verifying never leaves them stale. A per-sample list is written only
when it has a value for every generation: datasets 4's pyarrow JSON reader drops the nulls
of ``[null, "refusal"]`` and shifts the rest into the wrong samples (even across rows).
Sparse per-sample values go into ``sample_meta``, one object per generation, which that
reader reads correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import (
    answer_text,
    finish,
    pass_through,
    prompt_messages,
    responses_of,
    solution_text,
    system_of,
)
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import prompt_text, response_text

PROMPT_KEYS = ("problem", "question", "prompt")
CORRECTNESS_KEYS = ("correctness_math_verify", "correctness")
GROUP_LISTS = frozenset({"messages"})  # lists that belong to the row, whatever their length
DERIVED = frozenset({"correctness_count", "messages", "sample_meta"})


def _detect(fields: frozenset[str], row: dict) -> int:
    if "generations" in fields and isinstance(row.get("generations"), list) and fields & set(PROMPT_KEYS):
        return 90
    return 0


def _per_sample(row: dict, qkey: str, n: int) -> dict[str, list]:
    """Columns with one value per generation: the lists, and the keys of ``sample_meta``."""
    cols = {k: v for k, v in row.items() if k not in ("generations", qkey) and k not in GROUP_LISTS
            and isinstance(v, list) and len(v) == n and n > 0}
    sparse = row.get("sample_meta")
    if isinstance(sparse, list) and len(sparse) == n and all(isinstance(m, dict) for m in sparse):
        for key in dict.fromkeys(k for m in sparse for k in m):
            if key not in cols:
                cols[key] = [m.get(key) for m in sparse]
    return cols


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    for loc, row in rows:
        qkey = next((k for k in PROMPT_KEYS if k in row), None)
        gens = row.get("generations")
        if qkey is None or not isinstance(row[qkey], str | list):
            ctx.reject(loc, f"{'/'.join(PROMPT_KEYS)}: missing or not text", row)
            continue
        if not isinstance(gens, list) or not all(isinstance(t, str) for t in gens):
            ctx.reject(loc, "generations: expected a list of strings", row)
            continue
        per_sample = _per_sample(row, qkey, len(gens))
        ckey = next((k for k in CORRECTNESS_KEYS if k in per_sample), None)
        responses = []
        for i, text in enumerate(gens):
            r: dict = {"text": text}
            if ckey is not None and isinstance(per_sample[ckey][i], bool):
                r["correct"] = per_sample[ckey][i]
                r["score"] = 1.0 if r["correct"] else 0.0
            meta = {k: v[i] for k, v in per_sample.items() if k != ckey and not (k not in row and v[i] is None)}
            if "finish_reasons" in meta:
                meta["finish_reason"] = meta.pop("finish_reasons")
            meta["sample_index"] = i
            r["meta"] = meta
            if meta.get("is_reasoning_complete") is (meta.get("finish_reason") != "length"):
                del meta["is_reasoning_complete"]  # what the export derives anyway
            responses.append(r)
        g = pass_through(row, {qkey, "generations", *per_sample, *DERIVED})
        g["prompt"] = row[qkey]
        if g.get("uuid") is not None and g.get("uuid") == g.get("id"):
            del g["uuid"]  # written from the id
        if ckey not in (None, "correctness_math_verify"):
            g["correctness_from"] = ckey
        if g.get("solution") is not None and g.get("answer") is not None and \
                g["solution"] == solution_text(g["answer"]):
            del g["solution"]  # the exporter's stand-in for a missing reference solution
        for k in ("messages", "correctness_count"):  # kept only when they say more than the responses
            if k in row and row[k] != _derived(k, g, responses):
                g[k] = row[k]
        g["responses"] = responses
        yield finish(g)


def _derived(key: str, g: dict, rs: list[dict]):
    if key == "correctness_count":
        return sum(1 for r in rs if r.get("correct") is True)
    chosen = next((r for r in rs if r.get("correct") is True), rs[0] if rs else None)
    if chosen is None:
        return None
    return prompt_messages(g.get("prompt"), system_of(g, chosen)) + [{"role": "assistant",
                                                                      "content": response_text(chosen)}]


def _complete(r: dict) -> bool:
    """is_reasoning_complete: recorded, else False only when generation hit the length limit."""
    meta = r.get("meta") or {}
    if isinstance(meta.get("is_reasoning_complete"), bool):
        return meta["is_reasoning_complete"]
    return meta.get("finish_reason") != "length"


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """OpenR1-Math-220k's columns per group, plus the per-sample meta lists."""
    for g in groups:
        rs = responses_of(g)
        answer = answer_text(g.get("answer"))
        row: dict = {"problem": prompt_text(g.get("prompt"))}
        solution = g.get("solution") if g.get("solution") is not None else g.get("reference")
        if solution is None and answer is not None:
            solution = solution_text(answer)
        row["solution"] = solution
        row["answer"] = answer
        row["uuid"] = g.get("uuid") or g.get("id")
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "correctness_from", "answer",
                                                             "solution", "uuid", *DERIVED)})
        row["generations"] = [response_text(r) for r in rs]
        sparse: list[dict] = [{} for _ in rs]
        correct = [r.get("correct") if isinstance(r.get("correct"), bool) else _from_score(r) for r in rs]
        _column(row, sparse, "correctness_math_verify", correct)
        row["is_reasoning_complete"] = [_complete(r) for r in rs]
        keys = [k for r in rs for k in (r.get("meta") or {}) if k not in ("sample_index", "is_reasoning_complete")]
        for k in dict.fromkeys(keys):
            if k in row and k != "finish_reason" and all((r.get("meta") or {}).get(k) == row[k] for r in rs):
                continue  # the same on every sample as the row's own column (system_prompt): said once
            _column(row, sparse, "finish_reasons" if k == "finish_reason" else k,
                    [(r.get("meta") or {}).get(k) for r in rs])
        if any(sparse):
            row["sample_meta"] = sparse
        row["correctness_count"] = sum(1 for c in correct if c is True)
        messages = _derived("messages", g, rs)
        if messages is not None:
            row["messages"] = messages
        yield row


def _from_score(r: dict) -> bool | None:
    s = r.get("score")
    return s >= 1.0 if isinstance(s, int | float) and not isinstance(s, bool) else None


def _column(row: dict, sparse: list[dict], name: str, values: list) -> None:
    """A full per-sample list as its own column; one with gaps goes into sample_meta (no null padding)."""
    if all(v is not None for v in values):
        row[name] = values
        return
    for m, v in zip(sparse, values, strict=True):
        if v is not None:
            m[name] = v


register(Layout("generations", "prompt + generations[] (+ correctness lists), as open-r1's OpenR1-Math", _detect,
                to_groups, from_groups, aliases=("openr1",)))
