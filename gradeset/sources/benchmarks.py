"""Benchmark preparation (seed 003): merged math CSV and MMLU-Pro as question + letter.

``math_merge_rows`` turns rows of any math benchmark (MATH-500, AIME, AMC, GSM8K, ...)
into ``question, solution, original_source`` where ``solution`` is the gold *final
answer* (``#### 42`` and ``\\boxed{}`` are unwrapped) because that is what a verifier
compares against; the worked solution is optional extra (``keep_reference``).

``mmlu_pro_row`` appends the options as ``A. ...`` lines and gives the answer as a
letter, checking that the letter and ``answer_index`` agree and are in range.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from gradeset.sources.tables import Columns, answer_from_solution, detect_columns, normalize_answer

LETTERS = string.ascii_uppercase[:10]  # MMLU-Pro has up to ten options, A-J


def math_columns(first_row: dict, **flags: str | None) -> Columns:
    return detect_columns(first_row.keys(), sample=first_row, **flags)


def math_row(row: dict, cols: Columns, default_source: str, keep_reference: bool = False
             ) -> tuple[dict | None, str | None]:
    """One benchmark row -> {question, solution, original_source} or (None, reason)."""
    if cols.prompt is None:
        return None, "no question column"
    question = row.get(cols.prompt)
    if isinstance(question, list):
        from gradeset.records import is_messages, prompt_text

        if not is_messages(question):
            return None, f"{cols.prompt}: a list that is not chat messages"
        question = prompt_text(question)
    if question is None or not str(question).strip():
        return None, f"{cols.prompt}: empty question"
    gold: Any = None
    reference = None
    if cols.answer is not None:
        gold, reference = normalize_answer(row.get(cols.answer))
    worked = row.get(cols.solution) if cols.solution else None
    if worked is not None and not isinstance(worked, str):
        worked = str(worked)
    if worked:
        reference = worked
        if gold is None or gold == "":
            gold = answer_from_solution(worked)
    if gold is None or gold == "" or gold == []:
        return None, "no final answer: no answer column and no \\boxed{} / #### answer in the solution"
    if isinstance(gold, list):
        gold = gold[0]
    src = row.get(cols.source) if cols.source else None
    out = {"question": str(question).strip(), "solution": str(gold).strip(),
           "original_source": str(src) if src not in (None, "") else default_source}
    if keep_reference:
        out["reference"] = reference or ""
    return out, None


def parse_options(value: Any) -> list[str] | None:
    """Options as a list of strings: a list, a JSON list in a string, or a numpy array."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(value, list):
        return None
    return ["" if v is None else str(v) for v in value]


def format_mcq(question: str, options: list[str]) -> str:
    lines = [question.strip(), "", "Options:"]
    lines += [f"{LETTERS[i]}. {opt.strip()}" for i, opt in enumerate(options)]
    return "\n".join(lines)


def mmlu_pro_row(row: dict, keep: Iterable[str] = ()) -> tuple[dict | None, str | None]:
    """An MMLU-Pro row -> {question (options appended), answer (letter)} or (None, reason)."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        return None, "question: missing or empty"
    options = parse_options(row.get("options"))
    if options is None:
        return None, "options: missing or not a list"
    if not 2 <= len(options) <= len(LETTERS):
        return None, f"options: {len(options)} options; expected 2 to {len(LETTERS)} (A-J)"
    letter = row.get("answer")
    index = row.get("answer_index")
    if isinstance(index, str) and index.strip().lstrip("-").isdigit():
        index = int(index)
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    if isinstance(letter, str):
        letter = letter.strip().strip("()").upper()
        if len(letter) != 1 or letter not in LETTERS:
            return None, f"answer: {row.get('answer')!r} is not a letter A-J"
    elif letter is not None:
        return None, f"answer: expected a letter, got {letter!r}"
    if index is not None and not isinstance(index, int):
        return None, f"answer_index: expected an integer, got {index!r}"
    if letter is None and index is None:
        return None, "no answer: neither answer (letter) nor answer_index"
    if index is not None:
        if not 0 <= index < len(options):
            return None, f"answer_index {index} is outside the {len(options)} options"
        if letter is not None and LETTERS[index] != letter:
            return None, f"answer {letter!r} disagrees with answer_index {index} ({LETTERS[index]})"
        letter = LETTERS[index]
    if LETTERS.index(letter) >= len(options):
        return None, f"answer {letter!r} but only {len(options)} options"
    out = {"question": format_mcq(question, options), "answer": letter}
    for k in keep:
        out[k] = row.get(k)
    return out, None


def merge_math(sources: Iterable[tuple[str, Iterator[tuple[int, dict]]]], flags: dict[str, str | None],
               dedup: bool = True, keep_reference: bool = False,
               on_reject=None, on_duplicate=None, on_columns=None) -> Iterator[dict]:
    """Rows of several (name, rows) benchmark sources merged; columns detected per source."""
    seen: set[str] = set()
    for name, rows in sources:
        cols = None
        for loc, row in rows:
            if cols is None:
                cols = math_columns(row, **flags)
                if on_columns is not None:
                    on_columns(name, cols)
            out, reason = math_row(row, cols, name, keep_reference)
            if out is None:
                if on_reject is not None:
                    on_reject(name, loc, reason, row)
                continue
            key = " ".join(out["question"].split())
            if dedup and key in seen:
                if on_duplicate is not None:
                    on_duplicate(name, loc)
                continue
            seen.add(key)
            yield out
