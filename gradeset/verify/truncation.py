"""Does a completion without a committed answer end like work in progress?

A completion cut by the token limit often ends on a number: the last item of a list being
written ("…, 15, 30"), the first of several displayed steps (``3^{5}=243``), a list marker
("…\\n\\n7."). Reading that number as the answer grades a random sample correct whenever the
step happens to equal the gold. ``finish_reason`` is often missing and length alone does not
tell (a cut can come early), so the *shape of the ending* decides. These rules apply only
when the completion has no committed-answer signal (no box, no "answer is", no final-answer
sentence); a completion that commits to an answer is graded on it.

The length rule (``extract.looks_truncated``: a long text that does not end like a finished
sentence) stays in force beside these; the two catch different cuts.
"""

from __future__ import annotations

import re

_NUMBERED = re.compile(r"^[ \t]*(?:\*\*)?(\d{1,3}|[A-Ja-j])[.)](?:\*\*)?[ \t]*$")
_ITEM = re.compile(r"^[ \t#*]*(?:(?:step|part|case)[ \t]*)?(\d{1,3}|[A-Ja-j])(?:[.):]|\*\*)", re.IGNORECASE)
_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]*$")
_HEADING = re.compile(r"^[ \t#*]*(?:step|part|case|stage|phase)[ \t]*\d{1,3}[ \t]*[:.)]?[ \t*]*$", re.IGNORECASE)
_ITEM_VALUE = r"(?:-?\d+(?:\.\d+)?|\([ \t]*-?\d+(?:[ \t]*,[ \t]*-?\d+){0,5}[ \t]*\))"  # 7 or (1, 9)
_NUMBER_RUN = re.compile(r"(?:^|[^\w.:])(" + _ITEM_VALUE + r"(?:[ \t]*,[ \t]*" + _ITEM_VALUE + r")+)[ \t]*$")
_LABELLED_RUN = re.compile(r"(?:^|[^\w.])(" + _ITEM_VALUE + r"(?:[ \t]*,[ \t]*(?:[A-Za-z][A-Za-z ]{0,15}:[ \t]*)?"
                           + _ITEM_VALUE + r")+)[ \t]*$")
# "12 = 2 \\cdot 6" as the last line, no sentence end: a computation stopped before its result
_UNEVALUATED = re.compile(r"\d[ \t]*(?:\\cdot|\*|\+|-|\\times(?![ \t]*10[ \t]*\^))[ \t]*\d+[ \t]*$")
_LIST_LEAD = re.compile(r"(?:\bis\b|\bare\b|=|\bequals?\b|\bwere\b)\s*\S{0,12}$", re.IGNORECASE)
_DISPLAY_END = re.compile(r"(?:\\\]|\$\$|\\\)|\$)\s*$")
# cues that *open* a sequence of steps: a formula introduced by one of them is not the last step
_STEP_CUE = re.compile(r"\b(?:step\s*1|first(?:ly)?|start(?:ing)? (?:by|with)|begin(?:ning)? (?:by|with)|to begin|"
                       r"let(?:'s| us| me) (?:start|begin))\b", re.IGNORECASE)
_STEP_LABEL = re.compile(r"^[ \t#*]*(?:step|part|case|stage)[ \t]*\d{1,3}[ \t]*[:.)]", re.IGNORECASE)
_FINISHED = re.compile(r"[.!?)\]}$*'\"]\s*$")
_IN_PROGRESS = re.compile(r"\b(?:so far|up to now|for now|until now|running total|partial (?:sum|result|total)|"
                          r"subtotal|intermediate)\b", re.IGNORECASE)
_OPENS_STEPS = re.compile(r"^(?:\*\*)?(?:first(?:ly)?\b|step\s*1\b|to (?:begin|start)\b|let(?:'s| us) (?:start|begin)\b|"
                          r"we (?:start|begin)\b)", re.IGNORECASE)
_CONCLUSION = re.compile(r"\b(?:therefore|thus|hence|so(?! far)|final(?:ly)?|answer|result|total|altogether|overall|"
                         r"in (?:conclusion|summary|total)|conclude|consequently|solution)\b",
                         re.IGNORECASE)


def work_in_progress(text: str, labelled_lists: bool = False) -> str | None:
    """Why the ending looks unfinished ("ends on a list marker", …), or None when it looks final.

    ``labelled_lists``: "Monday: 5, Tuesday: 7" without a sentence end is still being written
    (gsm8k, where the answer is one number); for math it may be the answer ("Minimum: 2, Maximum: 9").
    """
    tail = text[-1500:].rstrip()
    if not tail:
        return None
    lines = tail.split("\n")
    last = lines[-1]
    if _BULLET.match(last):
        return "ends on an empty list item"
    if _HEADING.match(last):
        return "ends on a step heading"
    m = _NUMBERED.match(last)
    if m and (_after_an_item(lines[:-1]) or _continues_list(lines[:-1], m.group(1))):
        return "ends on a list marker"
    m = (_LABELLED_RUN if labelled_lists else _NUMBER_RUN).search(last[-300:])
    if m and (_items(m.group(1)) >= 3 or not _LIST_LEAD.search(last[-300:][:m.start(1)].rstrip())):
        # three or more items with no sentence end, or items no copula introduced: still listing
        return "ends inside a list of numbers"
    if _UNEVALUATED.search(last[-80:]):
        return "ends on an unevaluated expression"
    if _DISPLAY_END.search(tail[-8:]) and _lead_in_is_a_step(tail):
        return "ends on an intermediate step"
    sentence = _last_sentence(tail)
    if not _FINISHED.search(tail[-3:]) and not re.search(r"[\d$\\=]", _STEP_LABEL.sub("", sentence)):
        return "ends mid-sentence"
    if _IN_PROGRESS.search(sentence) and not _CONCLUSION.search(sentence):
        return "ends on a partial result"
    if _OPENS_STEPS.match(sentence) and not _CONCLUSION.search(sentence):
        return "ends after a first step"
    return None


def _last_sentence(tail: str) -> str:
    body = tail.rstrip(" .!?\t")
    cut = max(body.rfind(". "), body.rfind("\n"), body.rfind("! "), body.rfind("? "))
    return body[cut + 1:].strip()


def _items(run: str) -> int:
    """Top-level items of a comma list ("(1, 9), (2, 8)" has two)."""
    depth, n = 0, 1
    for c in run:
        depth += c == "("
        depth -= c == ")"
        n += c == "," and depth == 0
    return n


def _after_an_item(previous: list[str]) -> bool:
    """The line before the bare label (blank lines skipped) is a numbered item: "1. 8 ways …\n\n8."."""
    for line in reversed(previous[-40:]):
        if line.strip():
            return bool(_ITEM.match(line)) and not _NUMBERED.match(line)
    return False


def _continues_list(previous: list[str], label: str) -> bool:
    """The bare label ``N.`` follows item ``N-1`` (or letter before it) of a list above."""
    want = str(int(label) - 1) if label.isdigit() else chr(ord(label) - 1)
    if want in ("0", chr(ord("A") - 1), chr(ord("a") - 1)):
        return False
    for line in reversed(previous[-40:]):
        m = _ITEM.match(line)
        if m:
            return m.group(1) == want
    return False


def _lead_in_is_a_step(tail: str) -> bool:
    """The paragraph that introduces the closing formula opens a sequence of steps and concludes nothing."""
    body = tail.rstrip()
    # the closing math block: from its opening delimiter
    for close, opener in (("\\]", "\\["), ("$$", "$$"), ("\\)", "\\("), ("$", "$")):
        if body.endswith(close):
            start = body.rfind(opener, 0, len(body) - len(close))
            if start < 0:
                return False
            lead = body[:start]
            break
    else:
        return False
    # the words since the previous paragraph or displayed formula introduce this one
    body_lead = lead.rstrip()
    cut = max(body_lead.rfind("\n\n"), body_lead.rfind("$$"), body_lead.rfind("\\]"))
    lead_in = body_lead[cut + 2:] if cut >= 0 else body_lead
    lead_in = lead_in[-300:]
    return bool(_STEP_CUE.search(lead_in)) and not _CONCLUSION.search(_last_sentence(lead_in))
