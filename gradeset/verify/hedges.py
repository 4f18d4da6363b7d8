"""Hedged answers: a completion that commits to two different answers has committed to none.

"``\\boxed{6}`` if zero counts, otherwise ``\\boxed{5}``", "either 5 or 6", "(B) and (D)"
would be graded correct whenever one alternative matches the gold, which rewards a model
for listing guesses. A hedge is graded wrong, with the reason in the verdict's detail.

Not hedges: the same answer boxed twice; a list of solutions written as one answer
(``\\boxed{1}`` and ``\\boxed{4}``, "x = 1 or x = 4"); a union of inequalities
("x < -2 or x > 5"); a later box that explicitly corrects an earlier one ("Wait, … \\boxed{6}").
"""

from __future__ import annotations

import re

_HEDGE_WORDS = re.compile(r"\b(?:or|otherwise|alternatively|either|unless|depending|maybe|perhaps|possibly)\b",
                          re.IGNORECASE)
_IF = re.compile(r"\bif\b", re.IGNORECASE)
_CORRECTION = re.compile(r"\b(?:wait|actually|mistake|error|wrong|incorrect|correct(?:ion|ed|ing)?|recount\w*|"
                         r"recheck\w*|re-?evaluat\w*|instead|oops|sorry|hold on|should be|forgot|miscount\w*|"
                         r"misread|no,)", re.IGNORECASE)
_ASSIGN_OR = re.compile(r"^[\s$\\(),]*(?:or|and)[\s$\\(),]*[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*[\s$\\(]*$", re.IGNORECASE)
_RELATION = re.compile(r"[<>=]|\\[lg]eq?\b|\\[lg]t\b|\\ne\b|\\in\b")
_EITHER = re.compile(r"\beither\b", re.IGNORECASE)
_OR_SPLIT = re.compile(r"\s*(?:\\text\{\s*or\s*\}|\\(?:quad|qquad)?\s*\bor\b|\bor\b|\\vee)\s*", re.IGNORECASE)


def _key(s: str) -> str:
    return re.sub(r"\s+|\\[,;! ]|\$|\\left|\\right", "", s)


def boxed_hedge(text: str, spans: list[tuple[int, int, str]], window: int = 400) -> str | None:
    """Two different boxed answers close together, joined by alternative words and not corrected."""
    if len(spans) < 2:
        return None
    last = spans[-1]
    for prev in reversed(spans[-8:-1]):
        if last[0] - prev[1] > window:
            break
        if _key(prev[2]) == _key(last[2]):
            continue
        between = text[prev[1]:last[0]]
        before = text[max(0, prev[0] - 120):prev[0]]
        after = text[last[1]:last[1] + 80]
        if _CORRECTION.search(between):
            return None
        if _ASSIGN_OR.match(between):
            continue  # x = \boxed{1} or x = \boxed{4}: a solution list
        conditional = _IF.search(between) and (_IF.search(before) or _IF.search(after))
        if _HEDGE_WORDS.search(between) or conditional:
            return f"hedge: two different boxed answers ({prev[2][:30]!r} and {last[2][:30]!r})"
    return None


def text_hedge(ans: str) -> str | None:
    """An answer string that offers alternatives: "either 5 or 6", ``5 \\text{ or } 6``."""
    if len(ans) > 300:
        return None
    low = ans.lower()
    if "or" not in low and "\\vee" not in low:
        return None
    parts = [p for p in _OR_SPLIT.split(_EITHER.sub("", ans)) if p.strip()]
    if len(parts) < 2:
        return None
    if any(_RELATION.search(p) for p in parts):
        return None  # "x < -2 or x > 5", "x = 1 or x = 4": one answer written as alternatives of a relation
    keys = {_key(p).strip(".,;") for p in parts}
    if len(keys) < 2:
        return None
    return f"hedge: alternatives {ans.strip()[:60]!r}"
