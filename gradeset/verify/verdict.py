"""The result of grading one completion."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Verdict:
    """score in [0, 1]; ``parsed`` is the extracted answer, None when nothing could be extracted.

    ``detail`` says why a completion was not graded as correct when that is not just a
    wrong answer ("truncated", "timeout", "no final answer", ...), so reports can count
    grader failures apart from model failures.
    """

    score: float
    correct: bool
    parsed: str | None
    detail: str | None = None
    execution_output: str | None = None
    path: str | None = None  # which rule decided: "exact", "symbolic" or "judge" (meta.verify_path)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Asked:
    """A gold answer with the question it answers, for verifiers that read the question
    (``wants_question``: "round to the nearest tenth" changes what counts as equal)."""

    answer: Any
    question: str


def unparsed(detail: str, path: str | None = None) -> Verdict:
    return Verdict(0.0, False, None, detail, path=path)


def graded(correct: bool, parsed: str | None, detail: str | None = None, path: str | None = None) -> Verdict:
    return Verdict(1.0 if correct else 0.0, bool(correct), parsed, detail, path=path)
