"""GSM8K grading the way lm-eval's gsm8k task filters do, plus truncation safety.

``strict``: only the ``#### n`` line counts (lm-eval "strict-match").
``flexible``: ``#### n``, else ``\\boxed{n}``, else the last number (lm-eval "flexible-extract"),
except in a long completion cut mid-sentence, which is ungraded rather than read from
a stray number in its reasoning.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from gradeset.verify import extract
from gradeset.verify.verdict import Verdict, graded, unparsed

_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def to_number(s: str) -> Fraction | None:
    s = s.strip().replace(",", "").replace("$", "").rstrip(".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?|-?\.\d+", s):
        return None
    return Fraction(s)


def gold_number(gold: Any) -> Fraction | None:
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        return Fraction(str(gold))
    if not isinstance(gold, str):
        return None
    h = extract.hashes_answer(gold)
    return to_number(h if h is not None else gold)


class GSM8KVerifier:
    name = "gsm8k"

    def __init__(self, mode: str = "flexible", truncation_chars: int = 400):
        if mode not in ("strict", "flexible"):
            raise ValueError("mode must be 'strict' or 'flexible'")
        self.mode = mode
        self.truncation_chars = truncation_chars

    def extract(self, completion: str) -> tuple[str | None, str]:
        text = extract.after_thinking(extract.strip_turn_tail(completion or ""))
        m = extract.last_match(_STRICT, text)
        if m:
            return m.group(1), "####"
        if self.mode == "strict":
            return None, "no #### line"
        boxed = extract.last_boxed(text)
        if boxed is not None:
            return boxed, "boxed"
        if extract.looks_truncated(text, self.truncation_chars):
            return None, "truncated: no final answer"
        m = extract.last_match(_FLEX, text)
        if m:
            return (m.group(1) or m.group(2)), "last number"
        return None, "no number"

    def __call__(self, completion: str, gold: Any) -> Verdict:
        ans, why = self.extract(completion)
        if ans is None:
            return unparsed(why)
        g = gold_number(gold)
        if g is None:
            return graded(False, ans, "gold is not a number")
        p = to_number(ans)
        if p is None:
            return graded(False, ans, "answer is not a number")
        return graded(p == g, ans)
