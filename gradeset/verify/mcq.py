"""Multiple choice (A–J): read the chosen letter only where the model states its choice.

Accepted: ``\\boxed{B}``, ``\\boxed{\\text{(B)}}``, "Answer: B", "the answer is (B)",
``<answer>B</answer>``, or a final line that is just the letter ("(B)", "B.", "**B**").
A capital letter in prose ("I think A is wrong") is never a choice.
"""

from __future__ import annotations

import re
from typing import Any

from gradeset.verify import extract, hedges, truncation
from gradeset.verify.verdict import Verdict, graded, unparsed

_WRAP = re.compile(r"^[\s(\[{*]*(?:\\text(?:bf)?\{)?[\s(]*([A-Za-z])[\s)]*\}?[\s)\]}.*:]*$")


def _letter(s: str, letters: str) -> str | None:
    if len(s) > 64:
        return None  # a choice is a letter with a little decoration, never a long text
    m = _WRAP.match(s.strip())
    if m and m.group(1).upper() in letters and (m.group(1).isupper() or len(s.strip()) <= 3):
        return m.group(1).upper()
    return None


_SEP = r"[ \t:：*]{0,6}(?:(?:actually|still|then|therefore|clearly|definitely|either|now)[ \t,:]{1,3})?[ \t*]{0,4}"


def _choice(letters: str) -> str:
    """The letter, optionally in \\boxed{, \\text{, \\textbf{ or parentheses; capital unless in parentheses."""
    cap = "[" + re.escape(letters) + "]"
    low = "[" + re.escape(letters.lower()) + "]"
    return (r"(?:\\boxed\{[ \t]{0,2})?(?:\\text(?:bf|rm)?\{[ \t]{0,2})?(?:\((?-i:(" + cap + "|" + low + r"))\)"
            r"|(?-i:(" + cap + r")))(?![A-Za-z0-9])")


def _phrases(letters: str) -> list[re.Pattern]:
    """Where a model commits to a choice. Every quantifier is bounded and no two adjacent ones
    overlap, so a hostile "answer" + 200 spaces costs a linear scan (issue 12)."""
    c = _choice(letters)
    return [re.compile(p, re.IGNORECASE) for p in (
        r"\banswer(?:[ \t]{1,3}(?:is|would be|should be|will be|must be))?"
        + _SEP + c,
        r"\b(?:correct|best|right|final)[ \t]{1,3}(?:choice|option)(?:[ \t]{1,3}(?:is|would be|should be))?" + _SEP + c,
        r"\b(?:choice|option)[ \t]{1,3}" + c + r"[ \t]{0,3}is[ \t]{1,3}(?:correct|right|the (?:correct |right )?answer)",
        r"\b(?:pick|choose|select|go with|going with|opt for)[ \t]{1,3}(?:option[ \t]{1,3}|choice[ \t]{1,3})?" + c,
        r"答案[ \t]{0,3}(?:[:：是为]|应为|应该是)?[ \t]{0,3}" + c,
        r"(?:正确)?选项?(?:是|为)[ \t]{0,3}" + c,
    )]


_KEYS = (("answer",), ("choice", "option"), ("choice", "option"), ("pick", "choose", "select", "go with",
                                                                     "going with", "opt for"),
         ("答案",), ("选",))


def _hedge_after(text: str, end: int, letter: str, letters: str) -> str | None:
    """"(B) and (D)", "B or D", "B/D" right after the chosen letter."""
    m = re.match(r"[ \t)(]{0,3}(?:and|or|&|/|,)[ \t]{0,3}(?:(?:possibly|maybe|perhaps|option)[ \t]{1,3})?\(?([" + re.escape(letters) + r"])\)?(?![A-Za-z])",
                 text[end:end + 24], re.IGNORECASE)
    if m and m.group(1).upper() != letter:
        return f"hedge: two choices ({letter} and {m.group(1).upper()})"
    return None


_LEADING = re.compile(r"^\s*\(?([A-Z])(?:\)|\.(?=\s|$))")
_LEAD_LETTER = re.compile(r"^[ \t$]{0,3}(?:\\text(?:bf|rm)?[ \t]{0,2}\{[ \t]{0,2})?\(([A-Z])\)[ \t]{0,2}\}?(?:[ \t]|\\ |\$|$)")


class MCQVerifier:
    name = "mcq"

    def __init__(self, letters: str = "ABCDEFGHIJ", truncation_chars: int = 400):
        self.letters = letters.upper()
        self.truncation_chars = truncation_chars
        self._phrases = _phrases(self.letters)

    def __getstate__(self):
        return {"letters": self.letters, "truncation_chars": self.truncation_chars}

    def __setstate__(self, state):
        self.__init__(**state)

    def extract(self, completion: str) -> tuple[str | None, str]:
        """(letter, how); letter None with the reason, or a letter with a "hedge: …" reason."""
        text = extract.after_thinking(extract.strip_turn_tail(completion or ""))
        got = extract.tag_content(text, "<answer>", "</answer>")
        if got is not None and _letter(got, self.letters):
            return _letter(got, self.letters), "tag"
        found: list[tuple[int, str, str]] = []  # (position, letter, how)
        not_choice: tuple[int, str] | None = None
        spans = extract.box_spans(text)
        if spans:
            boxed = spans[-1][2]
            letter = _letter(boxed, self.letters) or _lead(boxed, self.letters)
            if letter is None:
                not_choice = (spans[-1][0], f"boxed content is not a choice: {boxed[:40]!r}")
            else:
                hedge = hedges.boxed_hedge(text, spans)
                if hedge is not None:
                    return letter, hedge
                found.append((spans[-1][0], letter, "boxed"))
        low = text.lower()
        for keys, rx in zip(_KEYS, self._phrases, strict=True):
            if not any(k in low for k in keys):
                continue  # a literal test in C instead of a regex scan of the whole text
            m = extract.last_match(rx, text, horizon=extract.HORIZON)
            if m is not None:
                letter = next(g for g in m.groups() if g).upper()
                if letter in self.letters:
                    found.append((m.start(), letter, "phrase:" + str(m.end())))
        if not_choice is not None and (not found or max(f[0] for f in found) < not_choice[0]):
            return None, not_choice[1]  # the last thing the model committed to is not a letter
        if found:
            pos, letter, how = max(found, key=lambda f: f[0])
            if how.startswith("phrase:"):
                hedge = _hedge_after(text, int(how[7:]), letter, self.letters)
                return (letter, hedge) if hedge else (letter, "phrase")
            return letter, how
        wip = truncation.work_in_progress(text)
        if wip is not None and wip != "ends mid-sentence":
            return None, f"truncated: {wip}"  # "A. …\nB. …\nC." is a list being written, not a choice
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        if lines:
            letter = _letter(lines[-1], self.letters) or _lead(lines[-1], self.letters) \
                or _amc(lines[-1], self.letters)
            if letter:
                return letter, "last line"
        m = _LEADING.match(text)  # "A. Because ..." / "(B) since ..."
        if m and m.group(1) in self.letters:
            return m.group(1), "leading"
        if wip is not None:
            return None, f"truncated: {wip}"
        if extract.looks_truncated(text, self.truncation_chars):
            return None, "truncated: no final answer"
        return None, "no choice stated"

    def __call__(self, completion: str, gold: Any) -> Verdict:
        letter, why = self.extract(completion)
        if letter is None:
            return unparsed(why)
        if why.startswith("hedge"):
            return graded(False, letter, why)
        g = gold_letter(gold, self.letters)
        if g is None:
            return graded(False, letter, "gold is not a choice letter")
        return graded(letter == g, letter)


def _lead(s: str, letters: str) -> str | None:
    """AMC style: ``\\textbf{(B)}\\ 7`` / ``\\textbf{(B) }7`` / ``(B) 7`` -- the letter, then its value."""
    m = _LEAD_LETTER.match(s)
    return m.group(1) if m and m.group(1) in letters else None


_AMC = re.compile(r"\\textbf\{\(([A-Z])\)[ \t]{0,2}\}|\\textbf\{\(([A-Z])\)\}")


def _amc(line: str, letters: str) -> str | None:
    """AMC's answer format at the end of a line: "… 172. \\textbf{(B) }7" (the last one on the line)."""
    found = None
    for found in _AMC.finditer(line[-200:]):  # noqa: B007
        pass
    if found is None:
        return None
    letter = found.group(1) or found.group(2)
    return letter if letter in letters else None


def gold_letter(gold: Any, letters: str) -> str | None:
    if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(letters):
        return letters[gold]
    if isinstance(gold, dict):
        gold = gold.get("answer", gold.get("label"))
    if isinstance(gold, str):
        return _letter(gold, letters)
    return None
