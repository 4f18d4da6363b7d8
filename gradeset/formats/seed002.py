"""Seed 002's preference pairs: ``positive`` / ``negative`` and no prompt field.

The prompt is derived, and the rule used is recorded on each group (``prompt_rule``) and
in the import notes:

* ``answer-marker``: the text before "The answer is" in the positive (seed 002's own
  regex ``^(.+?)\\s+The answer is``, used to build its test file);
* ``common-prefix``: otherwise the common prefix of positive and negative, cut at a word
  boundary (what TRL's ``extract_prompt`` does for implicit prompts).

The positive becomes a response with score 1.0 / correct, the negative 0.0 / wrong, and
the answer is the number after "The answer is".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from gradeset.formats._util import ExportError, common_prefix, finish, pass_through, responses_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import group_id, prompt_text, response_text

_MARKER = re.compile(r"^(.+?)\s+The answer is", re.S)
_ANSWER = re.compile(r"The answer is (-?\d+(?:\.\d+)?)")


def _detect(fields: frozenset[str], row: dict) -> int:
    return 100 if {"positive", "negative"} <= fields else 0


def parse_answer(text: str):
    """The number after "The answer is" (an int when whole, as seed 002's test file has it)."""
    m = _ANSWER.search(text)
    if not m:
        return None
    s = m.group(1)
    return int(s) if "." not in s else s


def derive_prompt(positive: str, negative: str) -> tuple[str, str, str, bool] | None:
    """(prompt, positive text, negative text, negative had the prompt) or None."""
    m = _MARKER.match(positive)
    if m:
        prompt = m.group(1)
        pos = positive[m.end(1):].lstrip()
        has = negative.startswith(prompt) and negative[len(prompt):len(prompt) + 1].isspace()
        neg = negative[len(prompt):].lstrip() if has else negative
        return prompt, pos, neg, has
    prefix = common_prefix(positive, negative)
    if not prefix.strip():
        return None
    return prefix.rstrip(), positive[len(prefix):].lstrip(), negative[len(prefix):].lstrip(), True


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    rules: dict[str, int] = {}
    for loc, row in rows:
        bad = next((k for k in ("positive", "negative") if not isinstance(row.get(k), str)), None)
        if bad:
            v = row.get(bad)
            ctx.reject(loc, f"{bad}: missing" if bad not in row else
                       f"{bad}: expected a string, got {type(v).__name__}", row)
            continue
        derived = derive_prompt(row["positive"], row["negative"])
        if derived is None:
            ctx.reject(loc, "cannot derive a prompt: no 'The answer is' in positive and no common prefix "
                       "of positive and negative", row)
            continue
        prompt, pos, neg, neg_has_prompt = derived
        rule = "answer-marker" if _MARKER.match(row["positive"]) else "common-prefix"
        rules[rule] = rules.get(rule, 0) + 1
        g = pass_through(row, {"positive", "negative"})
        g["prompt"] = prompt
        if "answer" not in g:
            g["answer"] = parse_answer(row["positive"])
        g["prompt_rule"] = rule
        if neg_has_prompt and rule == "answer-marker":
            g["negative_has_prompt"] = True
        g["responses"] = [{"text": pos, "score": 1.0, "correct": True},
                          {"text": neg, "score": 0.0, "correct": False}]
        yield finish(g)
    if rules.get("answer-marker"):
        ctx.note(f"seed002: {rules['answer-marker']} prompts = the text before 'The answer is' in positive "
                 "(prompt_rule=answer-marker)")
    if rules.get("common-prefix"):
        ctx.note(f"seed002: {rules['common-prefix']} prompts = the common prefix of positive and negative "
                 "(prompt_rule=common-prefix)")


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """positive = prompt + the better response, negative = the other (with the prompt when it had it)."""
    for g in groups:
        rs = responses_of(g)
        if len(rs) != 2:
            raise ExportError(f"group {g.get('id')}: has {len(rs)} responses; a seed002 row is one "
                              "positive/negative pair. Make pairs with `gradeset build dpo` first")
        pos, neg = rs
        sp, sn = pos.get("score"), neg.get("score")
        if isinstance(sp, int | float) and isinstance(sn, int | float) and sn > sp:
            pos, neg = neg, pos
        prompt = prompt_text(g.get("prompt"))
        neg_text = response_text(neg)
        if "prompt_rule" in g:  # read from seed002 rows: write the negative back as it was
            with_prompt = bool(g.get("negative_has_prompt")) or g["prompt_rule"] == "common-prefix"
        else:  # an answer-shaped negative repeats the question like the positive; a refusal does not
            with_prompt = neg_text.startswith("The answer is")
        row = {"positive": f"{prompt} {response_text(pos)}",
               "negative": f"{prompt} {neg_text}" if with_prompt else neg_text}
        derived_answer = parse_answer(row["positive"])
        for k, v in g.items():
            if k in ("prompt", "responses", "prompt_rule", "negative_has_prompt"):
                continue
            if k == "answer" and v == derived_answer:
                continue
            if k == "id" and v == group_id(g.get("prompt"), g.get("answer"), g.get("source")):
                continue
            row[k] = v
        yield row


register(Layout("seed002", "seed 002 pairs: positive/negative, prompt derived ('The answer is' or common prefix)",
                _detect, to_groups, from_groups, aliases=("pairs", "positive-negative")))
