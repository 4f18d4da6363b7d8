"""Rounded answers to questions that ask for rounding.

"Round to the nearest tenth" makes ``3.1`` a correct answer when the gold is ``3.14159``;
without such a request it is a wrong one. So the question decides: a rounded decimal is
accepted only when the question asks for rounding and the gold rounds to the answer at
the stated precision (or, when none is stated, at the answer's own number of decimals).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

_ASKS = re.compile(r"\b(?:round(?:ed|ing)?|nearest|decimal places?|approximate(?:ly)?|to the nearest|"
                   r"significant (?:figures|digits)|estimate)\b", re.IGNORECASE)
_PLACES = [
    (re.compile(r"nearest\s+(?:whole(?:\s+number)?|integer|unit|dollar|percent|degree|cent(?!ury))", re.I), None),
    (re.compile(r"nearest\s+tenths?", re.I), 1),
    (re.compile(r"nearest\s+hundredths?", re.I), 2),
    (re.compile(r"nearest\s+thousandths?", re.I), 3),
    (re.compile(r"nearest\s+ten[- ]thousandths?", re.I), 4),
]
_N_PLACES = re.compile(r"(\d|one|two|three|four|five|six)\s+decimal\s+places?", re.I)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_DECIMAL = re.compile(r"^-?\d+(?:\.(\d+))?$")


def stated_places(question: str) -> int | None | bool:
    """Decimal places the question asks for; True when it asks for rounding without saying
    how much; False when it does not ask for rounding at all."""
    if not question or not _ASKS.search(question):
        return False
    m = _N_PLACES.search(question)
    if m:
        w = m.group(1).lower()
        return int(w) if w.isdigit() else _WORDS[w]
    for rx, places in _PLACES:
        if rx.search(question):
            return 0 if places is None else places
    return True


def rounds_to(gold: Fraction, answer: str, question: str) -> bool:
    """True when the question asks for rounding and ``gold`` rounds to ``answer`` there."""
    places = stated_places(question)
    if places is False:
        return False
    a = answer.strip().replace(",", "")
    m = _DECIMAL.match(a)
    if not m:
        return False
    written = len(m.group(1) or "")
    if places is True:
        places = written
    if written > places:
        return False
    try:
        g = Decimal(gold.numerator) / Decimal(gold.denominator)
        target = g.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        return target == Decimal(a)
    except (InvalidOperation, ValueError):
        return False
