"""Which final answer a completion commits to, on realistic model output.

Every row of ``tests/data/verify/precision_cases.jsonl`` is a completion as a model writes
it (``<think>`` sections, Markdown, prose, Unicode, chat-template debris) with the verdict a
careful human grader gives. False positives (a wrong or uncommitted answer graded correct)
come first in the file: truncated work, hedges, normalisation that drops part of a value.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gradeset.verify import get_verifier

CASES = Path(__file__).parent / "data" / "verify" / "precision_cases.jsonl"
FIELDS = {"task", "completion", "gold", "expected", "category", "why"}


def _rows() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = _rows()


def test_fixture_has_the_shared_fields_and_covers_every_class():
    assert all(set(r) >= FIELDS for r in ROWS)
    cats = Counter(r["category"] for r in ROWS)
    for needed in ("truncation", "hedge", "normalisation_drop", "commentary_after_answer", "correction",
                   "prose_unicode", "locale", "units_notation", "gsm8k_flexible", "mcq", "trivia_contains",
                   "chat_template", "think"):
        assert cats[needed] >= 2, needed
    # false positives first: the wrong-answer classes are the bulk of the file
    assert sum(not r["expected"] for r in ROWS) >= 40


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}-{r['category']}" for i, r in enumerate(ROWS)])
def test_precision_case(row):
    verifier = get_verifier(row["task"], **row.get("options", {}))
    got = verifier(row["completion"], row["gold"])
    assert got.correct is row["expected"], (row["why"], got)
    if row["category"] == "hedge":  # wrong *because* it hedges, and the verdict says so
        assert got.detail and got.detail.startswith("hedge"), (row["why"], got)
    if row["category"] == "truncation":  # not graded from a stray number: no answer was committed
        assert got.parsed is None and got.detail, (row["why"], got)


REASONING = "We expand each term and collect like powers of x, keeping track of every sign. " * 8


def test_length_rule_alone_catches_a_long_text_that_stops_without_a_sentence_end():
    """Issue 17: the length-based truncation rule must be guarded by a test of its own.

    This ending has no dangling word, no list, no step heading and no "so far", so no other
    rule sees it; deleting the length rule (``extract.looks_truncated`` in ``MathVerifier.extract``)
    makes the stray 17 graded correct and this test fail.
    """
    from gradeset.verify.maths import MathVerifier

    cut = REASONING + "Adding these up gives 17, and we have computed"
    got = MathVerifier()(cut, "17")
    assert got.correct is False and got.parsed is None and got.detail.startswith("truncated"), got
    # the issue's own wording is caught as well
    assert MathVerifier()(REASONING + "The partial sums are 4 and 17, so far we have computed", "17").parsed is None
    # the same reasoning, finished with a sentence, is graded
    assert MathVerifier()(REASONING + "Adding these up gives 17.", "17").correct
    # and the length limit is what decides: lifted, the stray number is read
    assert MathVerifier(truncation_chars=10**6)(cut, "17").correct


def test_trivia_official_exact_match_stays_available():
    """``match="exact"`` is TriviaQA's official rule (published numbers); ``contains`` is the default."""
    sentence = "The largest planet is Jupiter."
    assert get_verifier("trivia")(sentence, ["Jupiter"]).correct
    assert not get_verifier("trivia", match="exact")(sentence, ["Jupiter"]).correct
    assert get_verifier("trivia", match="exact")("Jupiter", ["Jupiter"]).correct
    painted = "The Mona Lisa was painted by Leonardo da Vinci."
    assert not get_verifier("trivia", match="exact")(painted, ["Leonardo da Vinci"]).correct
    with pytest.raises(ValueError):
        get_verifier("trivia", match="fuzzy")
