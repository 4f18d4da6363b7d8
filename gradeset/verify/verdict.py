"""The result of grading one completion."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def to_dict(self) -> dict:
        return asdict(self)


def unparsed(detail: str) -> Verdict:
    return Verdict(0.0, False, None, detail)


def graded(correct: bool, parsed: str | None, detail: str | None = None) -> Verdict:
    return Verdict(1.0 if correct else 0.0, bool(correct), parsed, detail)
