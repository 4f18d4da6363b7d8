"""GSM8K grading the way lm-eval's gsm8k task filters do, plus truncation safety.

``strict``: only the ``#### n`` line counts (lm-eval "strict-match").
``flexible``: ``#### n``, else ``\\boxed{n}``, else an "answer is" phrase, else the number the
final sentence states ("so each child gets 4 cookies (with 3 left over)" -> 4, "the trip takes
2 hours and 15 minutes" -> 135 minutes or 2.25 hours), else the last number (lm-eval's rule).
A completion whose ending is work in progress (cut mid-sentence, mid-list, at a list marker)
is ungraded rather than read from a stray number in its reasoning.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from gradeset.verify import extract, final_answer, normalize, truncation
from gradeset.verify.verdict import Verdict, graded, unparsed

_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


_NUM = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_DURATION = re.compile(r"(\d+)\s{0,3}(?:(?:more|extra|additional|full)\s{1,3})?(?:hours?|hrs?|h)\s{0,3}(?:and\s{1,3})?(\d+)\s{0,3}(?:minutes?|mins?)\b", re.IGNORECASE)
_VERB = re.compile(r"(?:=|\b(?:is|are|was|were|equals?|has|have|had|gets?|got|keeps?|costs?|needs?|takes?|makes?|"
                   r"earns?|pays?|spends?|saves?|sells?|sold|buys?|bought|remains?|left|totals?|comes? to)\b)",
                   re.IGNORECASE)
_PAREN = re.compile(r"\([^()]{0,200}\)")


def to_number(s: str) -> Fraction | None:
    """A plain number, or the rational value of a short LaTeX answer (``\\frac34``, ``\\$42``,
    ``42 \\text{ dollars}``); None for anything else (never a digit string over 4,000 digits)."""
    s = s.strip()
    plain = s.replace(",", "").replace("$", "").rstrip(".")
    if len(plain) > 4000:
        return None
    if re.fullmatch(r"-?\d+(?:\.\d+)?|-?\.\d+", plain):
        return Fraction(plain)
    if len(s) > 200:
        return None
    value = normalize.canonical(final_answer.normalize_answer(s))
    if value is not None and value[0] == "num":  # 25\% is 25: GSM8K golds drop the sign
        return value[1].as_rational()
    return None


def sentence_number(text: str) -> str | None:
    """The number the final sentence states: after its last verb, parentheticals removed."""
    sentence = _PAREN.sub(" ", final_answer.last_sentence(text, 400))
    d = _DURATION.search(sentence)
    if d:
        return f"{d.group(1)} h {d.group(2)} min"
    nums = list(_NUM.finditer(sentence))
    if not nums:
        return None
    verb = None
    for verb in _VERB.finditer(sentence):  # noqa: B007
        pass
    if verb is not None:
        after = [m for m in nums if m.start() >= verb.end()]
        if after:
            return after[0].group(0)
    return nums[-1].group(0)


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
        m = extract.last_match(_STRICT, text) if "####" in text else None
        if m:
            return m.group(1), "####"
        if self.mode == "strict":
            return None, "no #### line"
        boxed = extract.last_boxed(text)
        if boxed is not None:
            return boxed, "boxed"
        got = extract.committed_phrase(text) if "nswer" in text or "NSWER" in text else None
        if got is not None:
            said = sentence_number(got[1]) if to_number(got[1]) is None else got[1]
            if said is not None:
                return said, "phrase"
        if extract.looks_truncated(text, self.truncation_chars) or extract.stops_mid_sentence(text):
            return None, "truncated: no final answer"
        wip = truncation.work_in_progress(text, labelled_lists=True)
        if wip is not None:
            return None, f"truncated: {wip}"
        said = sentence_number(text)
        if said is not None:
            return said, "final sentence"
        m = extract.last_match(_FLEX, text, horizon=extract.HORIZON)
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
        d = re.fullmatch(r"(\d+) h (\d+) min", ans)
        if d:  # a duration equals the gold in minutes or in hours
            h, mins = int(d.group(1)), int(d.group(2))
            return graded(g in (h * 60 + mins, h + Fraction(mins, 60)), ans)
        p = to_number(ans)
        if p is None:
            return graded(False, ans, "answer is not a number")
        return graded(p == g, ans)
