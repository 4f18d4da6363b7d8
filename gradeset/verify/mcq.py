"""Multiple choice (A–J): read the chosen letter only where the model states its choice.

Accepted: ``\\boxed{B}``, ``\\boxed{\\text{(B)}}``, "Answer: B", "the answer is (B)",
``<answer>B</answer>``, or a final line that is just the letter ("(B)", "B.", "**B**").
A capital letter in prose ("I think A is wrong") is never a choice.
"""

from __future__ import annotations

import re
from typing import Any

from gradeset.verify import extract
from gradeset.verify.verdict import Verdict, graded, unparsed

_WRAP = re.compile(r"^[\s(\[{*]*(?:\\text(?:bf)?\{)?[\s(]*([A-Za-z])[\s)]*\}?[\s)\]}.*:]*$")


def _letter(s: str, letters: str) -> str | None:
    m = _WRAP.match(s.strip())
    if m and m.group(1).upper() in letters and (m.group(1).isupper() or len(s.strip()) <= 3):
        return m.group(1).upper()
    return None


def _phrase(letters: str) -> re.Pattern:
    return re.compile(
        r"(?:answer|choice|option)\s*(?:is|:)?\s*(?:option\s*)?[:\s]*\**\s*(?:\\boxed\{)?\s*(?:\\text\{)?\(?"
        r"([" + re.escape(letters) + r"])\)?(?![A-Za-z])",
        re.IGNORECASE,
    )


_LEADING = re.compile(r"^\s*\(?([A-Z])(?:\)|\.(?=\s|$))")


class MCQVerifier:
    name = "mcq"

    def __init__(self, letters: str = "ABCDEFGHIJ", truncation_chars: int = 400):
        self.letters = letters.upper()
        self.truncation_chars = truncation_chars
        self._phrase = _phrase(self.letters)

    def __getstate__(self):
        return {"letters": self.letters, "truncation_chars": self.truncation_chars}

    def __setstate__(self, state):
        self.__init__(**state)

    def extract(self, completion: str) -> tuple[str | None, str]:
        text = extract.after_thinking(extract.strip_turn_tail(completion or ""))
        got = extract.tag_content(text, "<answer>", "</answer>")
        if got is not None and _letter(got, self.letters):
            return _letter(got, self.letters), "tag"
        boxed = extract.last_boxed(text)
        if boxed is not None:
            letter = _letter(boxed, self.letters)
            return (letter, "boxed") if letter else (None, f"boxed content is not a choice: {boxed[:40]!r}")
        m = extract.last_match(self._phrase, text)
        if m and m.group(1).upper() in self.letters:
            return m.group(1).upper(), "phrase"
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        if lines:
            letter = _letter(lines[-1], self.letters)
            if letter:
                return letter, "last line"
        m = _LEADING.match(text)  # "A. Because ..." / "(B) since ..."
        if m and m.group(1) in self.letters:
            return m.group(1), "leading"
        if extract.looks_truncated(text, self.truncation_chars):
            return None, "truncated: no final answer"
        return None, "no choice stated"

    def __call__(self, completion: str, gold: Any) -> Verdict:
        letter, why = self.extract(completion)
        if letter is None:
            return unparsed(why)
        g = gold_letter(gold, self.letters)
        if g is None:
            return graded(False, letter, "gold is not a choice letter")
        return graded(letter == g, letter)


def gold_letter(gold: Any, letters: str) -> str | None:
    if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(letters):
        return letters[gold]
    if isinstance(gold, dict):
        gold = gold.get("answer", gold.get("label"))
    if isinstance(gold, str):
        return _letter(gold, letters)
    return None
