"""Rewrite an answer into the form the exact comparison understands, without changing its value.

Each rule maps a notation humans accept as equal to a canonical one:

- inequalities and set-builder notation to intervals (``1\\le x<7`` -> ``[1, 7)``,
  ``x<-2 \\text{ or } x>5`` -> ``(-\\infty, -2) \\cup (5, \\infty)``);
- column or row vectors (``pmatrix``) to tuples;
- degrees-minutes(-seconds) angles to exact fractions of a degree;
- sine, cosine and tangent of multiples of 30 and 45 degrees (in degrees or as fractions
  of pi) to exact surds;
- function definitions ``f(m)=2m+c`` to their body with the argument renamed to one
  placeholder, so ``f(n)=2n+c`` matches; ``y=`` / ``f(x)=`` prefixes dropped;
- labels of multi-part answers (``Minimum: 2, Maximum: 9``, ``Anna: 12, Ben: 7``) dropped,
  keeping the values in order.

Rules only ever rewrite a whole recognised pattern; text that does not match is returned
unchanged (and then compared as it was). Every regex is linear (no nested quantifiers).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_OUTER = re.compile(r"\$\$?(.*?)\$?\$|\\\((.*)\\\)|\\\[(.*)\\\]", re.DOTALL)
_LT = r"(?:<|\\lt(?![a-zA-Z])|\\le(?:q|qslant)?(?![a-zA-Z])|≤|<=)"
_GT = r"(?:>|\\gt(?![a-zA-Z])|\\ge(?:q|qslant)?(?![a-zA-Z])|≥|>=)"
_OR = re.compile(r"\s*(?:\\text\s*\{\s*or\s*\}|\\(?:quad|qquad)?\s*\\?text\s*\{\s*or\s*\}|\bor\b|\\lor(?![a-zA-Z])|∨|\\vee(?![a-zA-Z]))\s*")
_VAR = r"([a-zA-Z])"


def _strip_outer(s: str) -> str:
    s = s.strip()
    for _ in range(3):
        m = _OUTER.fullmatch(s)
        if not m:
            break
        inner = next(g for g in m.groups() if g is not None).strip()
        if "$" in inner:  # "$1$ and $2$": several spans, not one wrapped answer
            break
        s = inner
    return s


def _is_lt(op: str) -> bool:
    return re.fullmatch(_LT, op) is not None


def _strict(op: str) -> bool:
    return op in ("<", ">", "\\lt", "\\gt")


_CMP = re.compile(rf"\s*({_LT}|{_GT})\s*")


def _one_inequality(s: str) -> tuple[str, str, str, str] | None:
    """``a < x <= b`` / ``x > a`` / ``a < x`` -> (open, lo, hi, close) as text."""
    parts = _CMP.split(s.strip())
    # parts alternate: operand, op, operand, (op, operand)
    if len(parts) == 3:
        left, op, right = (p.strip() for p in parts)
        if re.fullmatch(_VAR, left) and right:
            var_left, bound = True, right
        elif re.fullmatch(_VAR, right) and left:
            var_left, bound = False, left
        else:
            return None
        below = _is_lt(op) == var_left  # x < a, or a > x: everything below a
        br = ")" if _strict(op) else "]"
        if below:
            return "(", "-\\infty", bound, br
        return ("(" if _strict(op) else "["), bound, "\\infty", ")"
    if len(parts) == 5:
        lo, op1, var, op2, hi = (p.strip() for p in parts)
        if not re.fullmatch(_VAR, var) or not lo or not hi:
            return None
        if _is_lt(op1) and _is_lt(op2):
            return ("(" if _strict(op1) else "["), lo, hi, (")" if _strict(op2) else "]")
        if not _is_lt(op1) and not _is_lt(op2):  # 7 > x >= 1
            return ("(" if _strict(op2) else "["), hi, lo, (")" if _strict(op1) else "]")
    return None


_SET_BUILDER = re.compile(r"^\\\{\s*[a-zA-Z](?:\s*\\in\s*\\mathbb\s*\{?R\}?)?\s*(?:\\mid|\||:|\\colon)\s*(.*?)\s*\\\}$",
                          re.DOTALL)


def inequality_to_interval(s: str) -> str | None:
    """``1\\le x<7`` -> ``[1, 7)``; unions joined by "or"; None when not an inequality."""
    m = _SET_BUILDER.match(s)
    if m:
        s = m.group(1)
    if not _CMP.search(s) or "=" in _CMP.sub(" ", s).replace("\\neq", ""):
        return None
    out = []
    for piece in _OR.split(s):
        if not piece.strip():
            return None
        iv = _one_inequality(piece.strip().strip(","))
        if iv is None:
            return None
        out.append(f"{iv[0]}{iv[1]}, {iv[2]}{iv[3]}")
    return " \\cup ".join(out)


_VECTOR = re.compile(r"^\\begin\{([pbBvV]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)


def vector_to_tuple(s: str) -> str | None:
    m = _VECTOR.match(s)
    if not m:
        return None
    rows = [r.strip() for r in re.split(r"\\\\", m.group(2)) if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if len(cells) > 1 and all(len(r) == 1 for r in cells):
        items = [r[0] for r in cells]
    elif len(cells) == 1 and len(cells[0]) > 1:
        items = cells[0]
    else:
        return None
    return "(" + ", ".join(items) + ")"


_DEG = r"(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z]))"
_MIN = r"(?:'|′|\^\s*\{?\s*\\prime\s*\}?|\\prime(?![a-zA-Z]))"
_SEC = r"(?:''|″|\"|\^\s*\{?\s*\\prime\s*\\prime\s*\}?)"
_DMS = re.compile(rf"^(-?\d+)\s*{_DEG}\s*(\d+(?:\.\d+)?)\s*{_MIN}(?:\s*(\d+(?:\.\d+)?)\s*{_SEC})?$")


def dms_to_degrees(s: str) -> str | None:
    """``30^\\circ 15'`` -> ``\\frac{121}{4}``: exact, so it equals ``30.25^\\circ``."""
    m = _DMS.match(s.replace("\\,", " ").replace("\\ ", " ").strip())
    if not m:
        return None
    d = Fraction(m.group(1))
    extra = Fraction(m.group(2)) / 60 + (Fraction(m.group(3)) / 3600 if m.group(3) else 0)
    v = d - extra if d < 0 or m.group(1).startswith("-") else d + extra
    return f"\\frac{{{v.numerator}}}{{{v.denominator}}}" if v.denominator != 1 else str(v.numerator)


# exact sin of multiples of 15 degrees, as LaTeX
_SIN = {0: "0", 30: "\\frac{1}{2}", 45: "\\frac{\\sqrt{2}}{2}", 60: "\\frac{\\sqrt{3}}{2}", 90: "1"}
_ANGLE_DEG = r"(\d{1,4})\s*" + _DEG
_ANGLE_RAD = r"(\d{0,3})\s*\\pi\s*/\s*(\d{1,3})|\\frac\s*\{\s*(\d{0,3})\s*\\pi\s*\}\s*\{\s*(\d{1,3})\s*\}|(\d{0,3})\s*\\pi"
_TRIG = re.compile(rf"\\(sin|cos|tan)\s*(?:\(\s*(?:{_ANGLE_DEG}|{_ANGLE_RAD})\s*\)|\{{\s*(?:{_ANGLE_DEG}|{_ANGLE_RAD})\s*\}}"
                   rf"|\s*(?:{_ANGLE_DEG}|{_ANGLE_RAD})(?!\s*[a-zA-Z0-9\\{{(]))")  # "\sin 2\pi x" is no value


def _sin_deg(d: int) -> tuple[int, str] | None:
    """(sign, value) of sin(d degrees) for multiples of 30 and 45."""
    d %= 360
    sign = 1
    if d >= 180:
        sign, d = -1, d - 180
    if d > 90:
        d = 180 - d
    v = _SIN.get(d)
    return None if v is None else (sign, v)


def _trig_value(fn: str, deg: Fraction) -> str | None:
    if deg.denominator != 1:
        return None
    d = int(deg)
    s, c = _sin_deg(d), _sin_deg(90 - d)
    if s is None or c is None:
        return None
    if fn == "sin":
        sign, v = s
    elif fn == "cos":
        sign, v = c
    else:
        if c[1] == "0":
            return None  # tan 90: undefined
        t = {("0", "1"): "0", ("\\frac{1}{2}", "\\frac{\\sqrt{3}}{2}"): "\\frac{\\sqrt{3}}{3}",
             ("\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{2}}{2}"): "1", ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}"): "\\sqrt{3}",
             ("1", "0"): None}.get((s[1], c[1]))
        if t is None:
            return None
        sign, v = s[0] * c[0], t
    return f"({'-' if sign < 0 and v != '0' else ''}{v})"


def trig_values(s: str) -> str:
    """``\\sin 60^\\circ`` -> ``(\\frac{\\sqrt{3}}{2})``; other trig text is left alone."""
    if "\\sin" not in s and "\\cos" not in s and "\\tan" not in s:
        return s

    def one(m: re.Match) -> str:
        g = m.groups()
        fn, rest = g[0], g[1:]
        for off in (0, 6, 12):  # three alternatives of (deg, a, b, c, d, e)
            deg, a, b, c, d, e = rest[off:off + 6]
            if deg is not None:
                angle = Fraction(int(deg))
            elif b is not None:
                angle = Fraction(int(a or 1) * 180, int(b))
            elif d is not None:
                angle = Fraction(int(c or 1) * 180, int(d))
            elif e is not None:
                angle = Fraction(int(e or 1) * 180)
            else:
                continue
            v = _trig_value(fn, angle)
            return v if v is not None else m.group(0)
        return m.group(0)

    return _TRIG.sub(one, s)


_FUNC_DEF = re.compile(r"^([a-zA-Z])\s*\(\s*([a-zA-Z])\s*\)\s*=\s*(.+)$", re.DOTALL)
_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?\s*=\s*(?![^=]*=)")


def _letter(v: str) -> re.Pattern:
    return re.compile(rf"(?<![a-zA-Z\\]){v}(?![a-zA-Z])")


def function_body(s: str) -> str:
    """``f(m)=2m+c`` -> ``2x+c`` (argument renamed to x when x is free); ``y=...`` -> ``...``."""
    m = _FUNC_DEF.match(s)
    if m:
        var, body = m.group(2), m.group(3).strip()
        if var != "x" and not _letter("x").search(body):
            body = _letter(var).sub("x", body)
        return body
    m = _PREFIX.match(s)
    if m and _CMP.search(s) is None:
        return s[m.end():].strip()
    return s


_LABEL = re.compile(r"^(?:\\text(?:bf)?\s*\{\s*)?([A-Za-z][A-Za-z' ]{1,40}?)\s*\}?\s*(?::|=|\\colon|is)\s*(?:\}\s*)?")


def drop_labels(s: str) -> str:
    """``Minimum: 2, Maximum: 9`` -> ``2, 9``; every part must be labelled with a word (2+ letters)."""
    if ":" not in s and "=" not in s and "is" not in s:
        return s
    seps = re.split(r"\s*(?:[,;]|\\quad|\\qquad|\band\b)\s*", s.strip().rstrip("."))
    parts = [p for p in seps if p.strip()]
    if len(parts) < 2:
        return s
    values = []
    for p in parts:
        m = _LABEL.match(p.strip())
        if not m or len(m.group(1).replace(" ", "")) < 2 or m.group(1).strip() in ("or", "and"):
            return s
        v = p.strip()[m.end():].strip()
        if not v:
            return s
        values.append(v)
    return ", ".join(values)


_ORDINAL = re.compile(r"(\d+)\s*(?:\^\s*\{?\s*(?:\\text\s*\{\s*|\\mathrm\s*\{\s*)?(?:st|nd|rd|th)\s*\}?\s*\}?|(?:st|nd|rd|th)\b)")
_UNIT_END = re.compile(r"^(.*?\S)(?:\\[ ,;:!]|~|\s)*\\(?:text|mathrm|textrm|mbox)\s*\{\s*[a-zA-Z][a-zA-Z. ]{0,20}\}"
                       r"(?:\s*\^\s*(?:\{\s*-?\d\s*\}|-?\d))?\s*$", re.DOTALL)


def drop_unit(s: str) -> str:
    """``13\\pi \\text{ m}^2`` -> ``13\\pi``: a unit after a value never changes it; the value
    (with its pi, radical and sign) is kept whole."""
    m = _UNIT_END.match(s)
    if not m or not re.search(r"[\d}]|\\pi|π", m.group(1)):
        return s
    return m.group(1).rstrip("\\ ,~")


def drop_ordinal(s: str) -> str:
    """``12^{\\text{th}}`` / ``12th`` -> ``12`` (the whole answer only)."""
    m = _ORDINAL.fullmatch(s.strip())
    return m.group(1) if m else s


_PM = re.compile(r"\\pm(?![a-zA-Z])|±")
_ASSIGN = re.compile(r"^[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?\s*=\s*([^=<>]+)$")


def plus_minus(s: str) -> str:
    """``\\pm 3`` -> ``3, -3``; ``1 \\pm \\sqrt{2}`` -> ``1 + \\sqrt{2}, 1 - \\sqrt{2}`` (one ± only)."""
    parts = _PM.split(s)
    if len(parts) != 2 or "," in s:
        return s
    head, tail = parts[0].strip(), parts[1].strip()
    if not tail:
        return s
    if not head:
        return f"{tail}, -({tail})"
    return f"{head} + ({tail}), {head} - ({tail})"


def or_list(s: str) -> str:
    """``x = 1 \\text{ or } x = 4`` -> ``1, 4``: alternatives for one variable are its solutions."""
    parts = [p.strip().strip(",") for p in _OR.split(s)]
    if len(parts) < 2:
        return s
    values = []
    for p in parts:
        m = _ASSIGN.match(p)
        if not m:
            return s
        values.append(m.group(1).strip())
    return ", ".join(values)


@lru_cache(maxsize=65536)
def rewrite(text: str) -> str:
    """The answer in canonical notation, or the text itself when no rule applies."""
    if not isinstance(text, str) or len(text) > 600:
        return text
    s = _strip_outer(text)
    s = re.sub(r"\\(?:left|right)(?![a-zA-Z])\s*|\\displaystyle", "", s).strip()
    s = drop_labels(s)
    s = drop_ordinal(drop_unit(s))
    s = plus_minus(or_list(s))
    s = trig_values(s)
    for rule in (vector_to_tuple, dms_to_degrees, inequality_to_interval):
        out = rule(s)
        if out is not None:
            return out
    s2 = function_body(s)
    if s2 != s:
        out = inequality_to_interval(s2)
        return out if out is not None else s2
    return s if s != _strip_outer(text) else text
