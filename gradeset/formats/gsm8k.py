"""``question`` / ``answer`` rows: GSM8K, seed 002's test file, seed 004's traces.

A GSM8K answer is a worked solution ending ``#### 42``: the gold answer is the final
number after ``####`` with thousands commas removed, and the whole solution is kept as
``reference``. Numeric answers (seed 002's test file has ints) are kept as they are.

The same shape with ``problem`` for the question (MATH, OpenR1) is read too: a solution
without ``####`` gives its last ``\\boxed{}`` as the answer (kept whole as reference), and
answers that are alias lists or TriviaQA's ``{"aliases": [...]}`` objects stay as they are,
for the trivia verifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gradeset.formats._util import ExportError, finish, gsm8k_answer, pass_through, responses_of
from gradeset.formats.registry import ImportContext, Layout, Row, register
from gradeset.records import group_id, prompt_text, response_text


def _is_gold(ans) -> bool:
    """A string or number, a non-empty list of alias strings/numbers, or an aliases object
    (TriviaQA ``{"aliases": [...]}``, SQuAD ``{"text": [...]}``, ``{"value": ...}``)."""
    if isinstance(ans, bool):
        return False
    if isinstance(ans, str | int | float):
        return True
    if isinstance(ans, list):
        return bool(ans) and all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in ans)
    if isinstance(ans, dict):
        return any(ans.get(k) not in (None, "", []) for k in ("aliases", "normalized_aliases", "text", "value"))
    return False


def _detect(fields: frozenset[str], row: dict) -> int:
    if fields & {"question", "problem"} and fields & {"answer", "solution"} and "completion" not in fields:
        return 80
    return 0


def to_groups(rows: Iterable[Row], ctx: ImportContext) -> Iterator[dict]:
    extracted = boxed_n = 0
    for loc, row in rows:
        qkey = "question" if "question" in row else "problem"
        q = row.get(qkey)
        if not isinstance(q, str):
            ctx.reject(loc, "question: missing" if q is None else
                       f"question: expected a string, got {type(q).__name__}", row)
            continue
        key = "answer" if "answer" in row else "solution" if "solution" in row else None
        if key is None or row[key] is None:
            ctx.reject(loc, "answer: missing", row)
            continue
        ans = row[key]
        if not _is_gold(ans):
            ctx.reject(loc, f"{key}: expected a string, a number or a list of aliases, got {type(ans).__name__}",
                       row)
            continue
        g = {"prompt": q, **pass_through(row, {qkey, key})}
        if isinstance(ans, str):
            value, marked = gsm8k_answer(ans)
            if marked:
                extracted += 1
                g["reference"] = ans
                ans = value
            elif key == "solution" and (boxed := _last_boxed(ans)) is not None:
                boxed_n += 1
                g["reference"] = ans
                ans = boxed
        g["answer"] = ans
        yield finish(g)
    if boxed_n:
        ctx.note(f"gsm8k: {boxed_n} answers taken from the last \\boxed{{}} of the solution (kept as reference)")
    if extracted:
        ctx.note(f"gsm8k: {extracted} answers taken from the number after '####' (commas removed); the full "
                 "solution is kept as reference")


def from_groups(groups: Iterable[dict], **_) -> Iterator[dict]:
    """question + answer; a group with one response writes seed 004's traces layout."""
    for g in groups:
        rs = responses_of(g)
        if len(rs) > 1:
            raise ExportError(f"group {g.get('id')}: has {len(rs)} responses; a question/answer row holds one "
                              "solution. Pick one with `gradeset build sft` first")
        answer, ref = g.get("answer"), g.get("reference")
        if rs:
            text = response_text(rs[0]).rstrip()
            value = text if "####" in text or answer is None else f"{text}\n\n#### {answer}"
        elif isinstance(ref, str) and ref:
            value = ref if "####" in ref else f"{ref.rstrip()}\n#### {answer}"
        else:
            value = answer
        row = {"question": prompt_text(g.get("prompt")), "answer": value}
        for k, v in g.items():
            if k in ("prompt", "responses", "answer") or (k == "reference" and not rs):
                continue
            if k == "id" and v == group_id(g.get("prompt"), g.get("answer"), g.get("source")):
                continue
            row[k] = v
        yield row


register(Layout("gsm8k", "question/answer (GSM8K '#### 42', seed 002 test, seed 004 traces)", _detect,
                to_groups, from_groups, aliases=("question-answer", "qa", "seed002-test", "seed004")))


def _last_boxed(text: str) -> str | None:
    """``verify.extract.last_boxed``, imported when first needed: importing the verify package
    at start-up cost every command ~40 ms (this module is loaded with every layout)."""
    from gradeset.verify.extract import last_boxed

    return last_boxed(text)
