"""The text of a committed answer, cleaned so that nothing that carries meaning is lost.

Extraction hands the comparer a short string. Models decorate it: Unicode math, an
``Answer:`` label inside display brackets, ordinals (``12^{\\text{th}}``), ``5 out of 12``,
units with exponents (``\\text{mol}^{-1}``), locale digit grouping (``2.500.000``). Units may
go; a sign, a root, π or a factor never may. Without a marker the answer is read from the
final sentence ("The solutions are x = 1 and x = 4."), never from the last digit string.

Every function is a bounded, linear scan of its input.
"""

from __future__ import annotations

import re

from gradeset.verify.unicode_math import to_latex

_LABEL = re.compile(r"(?:\*\*)?(?:final\s{1,3})?answer(?:\s{1,3}is\b)?[ \t]{0,3}:?(?:\*\*)?[ \t]{0,3}\}?", re.IGNORECASE)
_ORDINAL = re.compile(r"(\d)\s*(?:\^\s*\{\s*(?:\\text(?:rm)?\s*\{\s*)?(?:st|nd|rd|th)\s*\}?\s*\}|\^\s*(?:st|nd|rd|th)"
                      r"|(?:st|nd|rd|th)(?![a-zA-Z]))")
# an area/volume unit after a number: 1,000.99m², 12 m² (but 3m² may be algebra: kept)
_GLUED_UNIT = re.compile(r"(\d[.,]\d+|\d(?=\s))\s?(?:[kcm]?m|in|ft|yd|mi)\^\{?[23]\}?$")
_TEMPERATURE = re.compile(r"(\^\s?\\circ)\s?[CFK]$")
_OUT_OF = re.compile(r"^\s*(-?\d+)\s+out\s+of\s+(\d+)\s*$", re.IGNORECASE)
# a unit in \text{} after a value, with an optional exponent (m^2, mol^{-1}, s^{-2})
_TEXT_UNIT = re.compile(r"\\(?:text|mathrm|mbox|textrm)\s{0,3}\{\s{0,3}([a-zA-Z][a-zA-Z./ ]{0,30})\}"
                        r"(?:\s{0,3}\^\s{0,3}(?:\{\s{0,3}-?\d\s{0,3}\}|-?\d))?$")
_UNIT_CMDS = ("\\text", "\\mathrm", "\\mbox", "\\textrm")
_MATH_WORDS = {"sin", "cos", "tan", "log", "ln", "exp", "pi", "infinity", "inf", "undefined", "none", "true", "false",
               "yes", "no", "even", "odd", "positive", "negative"}
_NOT_UNITS = {"or", "and", "if", "otherwise", "either", "else", "for", "when", "where"}
_VALUE_END = re.compile(r"(?:\d|\}|\)|\\pi|%)\s*$")
_LATEX_CMD = re.compile(r"\\(?:frac|dfrac|tfrac|sqrt|times|div|cdot|pi|left|right)(?![a-zA-Z])")


def normalize_answer(ans: str) -> str:
    """Answer text the comparer reads: Unicode translated, labels/delimiters/units/ordinals removed."""
    if len(ans) > 2000:
        return ans  # not an answer; too_complex() says so, and nothing here may cost more than a scan
    s = to_latex(ans).strip()
    s = _strip_label(s)
    s = _strip_trailing_delims(s)
    if not _balanced_delims(s):
        s = _strip_leading_delims(s)
    s = s.strip().rstrip(".").strip()
    s = _strip_text_units(s)
    s = _ORDINAL.sub(r"\1", s)
    if "²" in ans or "³" in ans:  # typed as a unit symbol, not as LaTeX algebra
        s = _GLUED_UNIT.sub(r"\1", s)
    s = _TEMPERATURE.sub(r"\1", s)
    s = strip_word_units(s)
    m = _OUT_OF.match(s)
    if m:
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    return _last_of_chain(s)


def _strip_label(s: str) -> str:
    """``\\text{Answer: } 317`` / ``} 317`` / ``**Final answer:** 7`` -> the value."""
    t = s.lstrip(" \t\n}")
    if t.startswith("\\text{"):
        t = t[6:].lstrip()
    m = _LABEL.match(t)
    if m and m.end() > 0 and "answer" in m.group(0).lower():
        return t[m.end():].strip()
    return s.lstrip("} \t\n") if s.lstrip(" \t\n").startswith("}") else s


def _strip_trailing_delims(s: str) -> str:
    while True:
        t = s.rstrip()
        for d in ("\\]", "\\)", "$"):
            if t.endswith(d):
                t = t[: -len(d)]
                break
        else:
            return t
        s = t


def _strip_leading_delims(s: str) -> str:
    t = s.lstrip()
    for d in ("$$", "\\[", "\\(", "$"):
        if t.startswith(d):
            return t[len(d):].lstrip()
    return t


def _balanced_delims(s: str) -> bool:
    return s.count("\\[") == s.count("\\]") and s.count("\\(") == s.count("\\)") and s.count("$") % 2 == 0


def _strip_text_units(s: str) -> str:
    """Drop trailing ``\\text{unit}^{k}`` blocks that follow a value (at most three)."""
    for _ in range(3):
        at = max(s.rfind(c) for c in _UNIT_CMDS)
        m = _TEXT_UNIT.match(s, at) if at >= 0 else None
        if m is None or m.group(1).strip().lower() in _NOT_UNITS:
            break
        head = _strip_spacing(s[:m.start()])
        if not _VALUE_END.search(head[-8:]):
            break
        s = head
    return s


def _strip_spacing(s: str) -> str:
    """Trailing spaces and LaTeX spacing commands (``\\,`` ``\\ `` ``~``)."""
    while True:
        t = s.rstrip()
        if t.endswith(("\\,", "\\;", "\\:", "\\ ", "\\!")):
            t = t[:-2]
        elif t.endswith("\\") and not t.endswith("\\\\"):
            t = t[:-1]  # "\\ " after rstrip
        elif t.endswith("~"):
            t = t[:-1]
        if t == s:
            return s
        s = t


def _last_of_chain(s: str) -> str:
    """``12 \\div 4 = 3`` -> ``3``: a computation whose left side has no unknowns ends in its value."""
    if "=" not in s or s.count("=") > 8 or "\\le" in s or "<" in s or ">" in s:
        return s
    parts = s.split("=")
    lhs = parts[0]
    if len(parts) >= 2 and parts[-1].strip() and re.search(r"\d", lhs) \
            and not re.search(r"[a-zA-Z]", _LATEX_CMD.sub("", lhs)):
        return parts[-1].strip()
    return s


MAX_ANSWER_CHARS = 1000
MAX_NESTING = 24


def too_complex(ans: str) -> str | None:
    """Why an extracted answer is not one (too long, nested too deeply), or None.

    Real final answers are short and shallow; a 1 MB box or 60 nested parentheses is hostile
    text, and handing it to the comparers (regexes, an ANTLR parser, sympy) would cost
    seconds to minutes in-process. One linear scan decides.
    """
    if len(ans) > MAX_ANSWER_CHARS:
        return f"answer too long to be an answer ({len(ans)} characters)"
    depth = deepest = 0
    for c in ans:
        if c in "({[":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif c in ")}]":
            depth -= 1
    if deepest > MAX_NESTING:
        return f"answer nested too deeply ({deepest} levels)"
    return None


# ---- locale digit grouping ---------------------------------------------------------------

_DOT_THOUSANDS = re.compile(r"^(-?\d{1,3})((?:\.\d{3}){2,})$")            # 2.500.000
_APOS_THOUSANDS = re.compile(r"^(-?\d{1,3})((?:['’]\d{3})+)(?:\.(\d+))?$")  # 3'000'000
_INDIAN = re.compile(r"^(-?\d{1,2})((?:,\d{2})+),(\d{3})(?:\.(\d+))?$")     # 12,50,000
_DECIMAL_COMMA = re.compile(r"^(-?\d+),(\d{1,2}|\d{4,})$|^(-?0),(\d+)$")    # 7,5  3,25  0,125


def locale_number(ans: str) -> str | None:
    """A plain decimal for locale-grouped digits, or None when the text is not one of them.

    ``2.500.000`` (two or more dot groups), ``3'000'000`` and Indian ``12,50,000`` cannot be
    anything else. A decimal comma (``7,5``) is also a two-item list, so the caller uses it
    only against a single-number gold (see ``decimal_comma_number``).
    """
    s = ans.strip().replace("{,}", ",").replace(" ", "")
    if len(s) > 64:
        return None
    m = _DOT_THOUSANDS.match(s)
    if m:
        return m.group(1) + m.group(2).replace(".", "")
    m = _APOS_THOUSANDS.match(s)
    if m:
        return m.group(1) + re.sub(r"['’]", "", m.group(2)) + ("." + m.group(3) if m.group(3) else "")
    m = _INDIAN.match(s)
    if m:
        return m.group(1) + m.group(2).replace(",", "") + m.group(3) + ("." + m.group(4) if m.group(4) else "")
    return None


def decimal_comma_number(ans: str) -> str | None:
    """``7,5`` -> ``7.5`` (no space after the comma, not a 3-digit group); else None."""
    s = ans.strip()
    if len(s) > 64:
        return None
    m = _DECIMAL_COMMA.match(s)
    if not m:
        return None
    a, b = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    return f"{a}.{b}"


# ---- the final sentence, when there is no marker ----------------------------------------

_SENTENCE_END = re.compile(r"(?<!\d)[.!?](?=\s|$)|(?<=\d)[.!?](?=\s|$)|\n")
_COPULA = re.compile(r"(?:\b(?:simplifies|simplify|reduces|evaluates|works out|comes out|comes|factors|expands|"
                     r"is equal|are equal)\s+(?:to|as)\b|\b(?:ist|sind|beträgt|est|sont|es|son|é|è)\b|是|为|\bis\b|\bare\b|\bwas\b|\bwere\b|\bequals?\b|\bbe\b|\bgives?\b|\bget\b|\bgot\b|\bobtain\b"
                     r"|\bremains?\b|\bbecomes?\b|=|:(?=\s)|\\approx\b|≈)", re.IGNORECASE)
_PARENTHETICAL = re.compile(r"\s*\([^()]{0,200}\)")


def last_sentence(text: str, window: int = 600) -> str:
    """The final sentence of the text (a line or up to the previous sentence end)."""
    tail = text[-window:].rstrip()
    body = tail.rstrip(".!? \t")
    cut = 0
    for m in _SENTENCE_END.finditer(body):
        if m.group(0) == "\n" or not _decimal_point(body, m.start()):
            cut = m.end()
    return tail[cut:].strip()


def _decimal_point(s: str, i: int) -> bool:
    return s[i] == "." and 0 < i < len(s) - 1 and s[i - 1].isdigit() and s[i + 1].isdigit()


def sentence_answers(sentence: str, limit: int = 12) -> list[str]:
    """What follows each copula of a final sentence, first to last ("the area is 16π square units").

    The caller takes the first that reads as a value: "The solutions are x = 1 and x = 4"
    means the whole list after "are", not the 4 after the last "=".
    """
    s = sentence.strip().rstrip(".!?").strip()
    if len(s) > 600:
        return []
    s = _PARENTHETICAL.sub("", s)
    out = []
    for m in _COPULA.finditer(s):
        rest = s[m.end():].strip()
        if rest:
            out.append(rest)
        if len(out) >= limit:
            break
    return out


def strip_word_units(s: str) -> str:
    """``16\\pi square units`` -> ``16\\pi``: trailing words after a value are units (at most four)."""
    if len(s) > 400:
        return s
    toks = s.rsplit(None, 4)
    if len(toks) < 2:
        return s
    keep = len(toks)
    while keep > 1 and toks[keep - 1].rstrip(".").isalpha() and len(toks[keep - 1].rstrip(".")) >= 2 \
            and toks[keep - 1].lower().rstrip(".") not in _NOT_UNITS | _MATH_WORDS:
        keep -= 1
    if keep == len(toks):
        return s
    cut = len(s)
    for tok in reversed(toks[keep:]):
        cut = s.rfind(tok, 0, cut)
    head = s[:cut].rstrip()
    return head if _VALUE_END.search(head[-8:]) else s


_MATH_SPAN = re.compile(r"\$([^$]{1,300})\$|\\\((.{1,300}?)\\\)")
_JOINER = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|&)\s*", re.IGNORECASE)
_COPULA_END = re.compile(r"(?:\b(?:is|are|be|were|was|equals?|gives?|get|obtain)|[=:])\s*$", re.IGNORECASE)


def spans_after_copula(sentence: str) -> str | None:
    """"the solutions are $x = 2$ and $x = 3$" -> ``x = 2, x = 3``: math spans that together
    are what the sentence states (joined by "or" they stay "… or …", which is a hedge unless they
    are relations)."""
    if len(sentence) > 800:
        return None
    spans = list(_MATH_SPAN.finditer(sentence))
    if len(spans) < 2:
        return None
    # the sentence's last run of spans joined by and/or/commas, introduced by a copula
    run = [spans[-1]]
    joiners: list[str] = []
    for prev in reversed(spans[:-1]):
        gap = sentence[prev.end():run[0].start()]
        if not _JOINER.fullmatch(gap):
            break
        joiners.append(gap.strip().lower())
        run.insert(0, prev)
    if len(run) < 2 or sentence[run[-1].end():].strip(" .!") or not _COPULA_END.search(sentence[:run[0].start()]):
        return None
    items = [(m.group(1) or m.group(2)).strip() for m in run]
    sep = " or " if any("or" in j.split() or j.endswith("or") for j in joiners) else ", "
    return sep.join(items)


_LABELLED = re.compile(r"^\s*(?:\*\*)?[A-Za-z][A-Za-z0-9 ()'_-]{0,24}(?:\*\*)?\s?:(?:\*\*)?\s*(\S.{0,80}?)\s*$")


def labelled_values(sentence: str) -> str | None:
    """"Minimum: 2, Maximum: 9" / "Anna: 12; Ben: 7" -> ``2, 9``: a final sentence made only of
    labelled values states them all (the comparer matches them against an unlabelled gold)."""
    s = sentence.strip().rstrip(".")
    if len(s) > 400 or ":" not in s:
        return None
    parts = [p for p in re.split(r"[,;]|\band\b", s) if p.strip()]
    if len(parts) < 2:
        return None
    values = []
    for part in parts:
        m = _LABELLED.match(part)
        if m is None:
            return None
        values.append(m.group(1).strip())
    return ", ".join(values)
