"""Rows holding a prompt and a list of sampled ``generations`` (open-r1's OpenR1-Math layout).

``{"problem", "answer", "generations": [...], "correctness_math_verify": [...],
"finish_reasons": [...], ...}``: each generation becomes a response. Correctness comes from
``correctness_math_verify`` (else ``correctness``); every other list with one value per
generation (``is_reasoning_complete``, ``correctness_llama``, ``finish_reasons`` ...) is
spread onto the responses' ``meta`` under its own name, so nothing is dropped and the
export can put the columns back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import finish, pass_through, responses_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import prompt_text, response_text

PROMPT_KEYS = ("problem", "question", "prompt")
CORRECTNESS_KEYS = ("correctness_math_verify", "correctness")


def _detect(fields: frozenset[str], row: dict) -> int:
    if "generations" in fields and isinstance(row.get("generations"), list) and fields & set(PROMPT_KEYS):
        return 90
    return 0


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
        n = len(gens)
        per_sample = {k: v for k, v in row.items()
                      if k != "generations" and isinstance(v, list) and len(v) == n and n > 0 and k != qkey}
        ckey = next((k for k in CORRECTNESS_KEYS if k in per_sample), None)
        responses = []
        for i, text in enumerate(gens):
            r: dict = {"text": text}
            if ckey is not None and isinstance(per_sample[ckey][i], bool):
                r["correct"] = per_sample[ckey][i]
                r["score"] = 1.0 if r["correct"] else 0.0
            meta = {k: v[i] for k, v in per_sample.items() if k != ckey}
            if "finish_reasons" in meta:
                meta["finish_reason"] = meta.pop("finish_reasons")
            meta["sample_index"] = i
            r["meta"] = meta
            responses.append(r)
        g = pass_through(row, {qkey, "generations", *per_sample})
        g["prompt"] = row[qkey]
        if ckey is not None:
            g["correctness_from"] = ckey
        g["responses"] = responses
        yield finish(g)


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """problem + generations + correctness (and the per-sample meta lists) per group."""
    for g in groups:
        rs = responses_of(g)
        row = {"problem": prompt_text(g.get("prompt"))}
        row.update({k: v for k, v in g.items() if k not in ("prompt", "responses", "correctness_from")})
        row["generations"] = [response_text(r) for r in rs]
        row[g.get("correctness_from") or "correctness"] = [r.get("correct") for r in rs]
        keys = [k for r in rs for k in (r.get("meta") or {}) if k != "sample_index"]
        for k in dict.fromkeys(keys):
            col = "finish_reasons" if k == "finish_reason" else k
            row[col] = [(r.get("meta") or {}).get(k) for r in rs]
        yield row


register(Layout("generations", "prompt + generations[] (+ correctness lists), as open-r1's OpenR1-Math", _detect,
                to_groups, from_groups, aliases=("openr1",)))
