"""The fast exact path: turn a short answer string into a canonical value, or refuse.

``canonical(text)`` returns one of

- ``("num", Surd, pct)``             numbers, radicals, pi, powers (pct: written with %)
- ``("inf", sign)``                   infinity
- ``("text", str)``                   words (\\text{Monday}, "yes")
- ``("seq", open, close, items)``     tuples and intervals, brackets kept
- ``("set", items)``                  \\{...\\} and bare comma lists (unordered)
- ``("union", items)``                interval unions
- ``("matrix", rows)``

or None when the string is outside this grammar (variables, functions, ...); the caller
then falls back to the symbolic parser. ``equal(a, b)`` returns True/False when it can
decide and None when it cannot. No eval, no sympy, bounded work.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from gradeset.verify.numbers import Refused, Surd, numbers_equal, parse_decimal

MAX_LEN = 400

_STRIP = [
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*"), ""),
    (re.compile(r"\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])"), ""),
    (re.compile(r"\\[,;:!> ]|~"), " "),
    (re.compile(r"\s*\{\s*,\s*\}\s*"), ","),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z])"), ""),
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\%|％"), "%"),
    (re.compile(r"\\\$|[$€£¥₹]|\\(?:euro|pounds?)(?![a-zA-Z])"), ""),
    (re.compile(r"\\(?:cdot|times)(?![a-zA-Z])"), "*"),
    (re.compile(r"\\div(?![a-zA-Z])"), "/"),
    (re.compile(r"\\infty|∞"), "INF"),
    (re.compile(r"\\pi(?![a-zA-Z])|π"), "PI"),
    (re.compile(r"\\cup(?![a-zA-Z])|∪"), "U"),
    (re.compile(r'\\?"'), " "),
    (re.compile(r"\s+"), " "),
]
_UNIT_TEXT_END = re.compile(r"([\d}%])\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*[a-zA-Z][a-zA-Z. ]*(?:\^?\{?[23]\}?)?\s*\}"
                            r"(?:\s*\^\s*\{?[23]\}?)?\s*$")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname|emph)\s*\{([^{}]*)\}")
_UNIT_TAIL = re.compile(r"^(.*?[\d}%)])\s*(?:[a-zA-Z][a-zA-Z.]*(?:\s*\^?\s*[23²³])?(?:\s+[a-zA-Z][a-zA-Z.]*)*)\s*$")
_EQ_PREFIX = re.compile(r"^\s*[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?\s*(?:=|\\in(?![a-zA-Z]))\s*")
_WORDS = re.compile(r"^[a-zA-Z][a-zA-Z '\-]*$")
_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$", re.DOTALL)


def clean(s: str) -> str:
    """Drop LaTeX spacing, sizing, currency, degree marks and wrappers that never change a value."""
    s = s.strip()
    for _ in range(3):
        m = re.fullmatch(r"\$\$?(.*?)\$?\$|\\\((.*)\\\)|\\\[(.*)\\\]", s, re.DOTALL)
        if not m:
            break
        s = next(g for g in m.groups() if g is not None).strip()
    s = _UNIT_TEXT_END.sub(r"\1", s)  # 5\text{ m}: an explicit unit after a number
    s = _TEXT_CMD.sub(lambda m: " " + m.group(1) + " ", s)
    for rx, rep in _STRIP:
        s = rx.sub(rep, s)
    s = s.strip().rstrip(".").strip()
    return s


def canonical(text: str | int | float | None):
    """Canonical value of an answer (cached: golds and common answers repeat), or None."""
    if isinstance(text, str):
        return _canonical_cached(text)
    return _canonical_uncached(text)


@lru_cache(maxsize=65536)
def _canonical_cached(text: str):
    return _canonical_uncached(text)


def _canonical_uncached(text: str | int | float | None):
    if text is None:
        return None
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        text = repr(text)
    if len(text) > MAX_LEN or not text.strip():
        return None
    s = clean(text)
    s = _EQ_PREFIX.sub("", s, count=1) if not s.lstrip().startswith("\\") else s
    try:
        return _canonical(s)
    except (Refused, RecursionError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _canonical(s: str):
    if not s:
        return None
    m = _MATRIX.match(s)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        out = []
        for r in rows:
            cells = [_number(c) for c in r.split("&")]
            if any(c is None for c in cells):
                return None
            out.append(tuple(cells))
        return ("matrix", tuple(out))
    if re.search(r"\bU\b", s):
        parts = [p.strip() for p in re.split(r"\bU\b", s)]
        items = [_canonical(p) for p in parts]
        if any(i is None or i[0] not in ("seq", "set") for i in items):
            return None
        return ("union", tuple(items))
    if s.startswith("\\{") and s.endswith("\\}"):
        items = _split_items(s[2:-2])
        return None if items is None else ("set", _sorted(items))
    if s.startswith("{") and s.endswith("}") and _top_level_comma(s[1:-1]):
        items = _split_items(s[1:-1])
        return None if items is None else ("set", _sorted(items))
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _top_level_comma(s[1:-1]):
        items = _split_items(s[1:-1])
        return None if items is None else ("seq", s[0], s[-1], items)
    if _top_level_comma(s) and not re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?%?", s):
        s2 = re.sub(r",?\s*\band\b\s*", ",", s)
        items = _split_items(s2)
        return None if items is None else ("set", _sorted(items))
    num = _number(s)
    if num is not None:
        return num
    if re.search(r"\band\b", s):  # "12 and 13"
        items = _split_items(re.sub(r",?\s*\band\b\s*", ",", s))
        return None if items is None else ("set", _sorted(items))
    words = s.replace("\\", " ").strip()
    if _WORDS.match(s) and len(words) >= 2 and not _looks_symbolic(words):
        return ("text", " ".join(words.lower().replace("-", " ").split()))
    return None


_SHORT_WORDS = {"no", "ok", "am", "pm", "up", "on", "odd"}
_SYMBOLIC_WORDS = {"sin", "cos", "tan", "log", "ln", "exp", "sqrt", "pi", "inf", "infinity", "e", "i"}


def _looks_symbolic(words: str) -> bool:
    toks = words.lower().split()
    # one or two letters (variables like "x", "ab") are algebra, not text
    return any(t in _SYMBOLIC_WORDS for t in toks) or (len(toks) == 1 and len(toks[0]) <= 2
                                                       and toks[0] not in _SHORT_WORDS)


def _sorted(items: tuple) -> tuple:
    """Set members in a canonical order, so equal sets also print the same."""
    return tuple(sorted(items, key=repr))


def _top_level_comma(s: str) -> bool:
    depth = 0
    for c in s:
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            return True
    return False


def split_top_level(s: str) -> tuple[list[str], bool]:
    """s split at the commas outside brackets, and whether its brackets balance.

    Shared by the canonical reader here and the exact expression parser, which also
    needs to know that no bracket closed before it opened."""
    parts, depth, cur, balanced = [], 0, [], True
    for c in s:
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
            balanced = balanced and depth >= 0
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts, balanced and depth == 0


def _split_items(s: str):
    parts, _ = split_top_level(s)
    items = []
    for p in parts:
        p = _EQ_PREFIX.sub("", p.strip(), count=1)
        if not p:
            return None
        v = _canonical(p)
        if v is None:
            return None
        items.append(v)
    return tuple(items)


def _number(s: str):
    s = s.strip()
    pct = False
    if s.endswith("%"):
        pct, s = True, s[:-1].strip()
    if re.fullmatch(r"[-+]?\s*INF", s):
        return ("inf", -1 if s.startswith("-") else 1)
    lit = parse_decimal(s)
    if lit is not None:
        return ("num", lit, pct)
    m = (re.fullmatch(r"([-+]?\d+)\s+(\d+)\s*/\s*(\d+)", s)  # mixed number 2 1/2
         or re.fullmatch(r"([-+]?\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}", s))  # 2\frac{1}{2}
    if m:
        whole, n, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if d == 0:
            return None
        frac = Fraction(n, d)
        return ("num", Surd.rational(whole - frac if whole < 0 else whole + frac), pct)
    value = _Parser(s).parse()
    if value is not None and value.has_variables() and re.search(r"[\d}]\s+[a-zA-Z]\s*$", s):
        return None  # "5 m": a unit or a product? sympy decides
    if value is None:
        m = _UNIT_TAIL.match(s)  # "12 cm", "5 \text{ meters}", "3 dollars"
        if m and m.group(1) != s:
            return _number(m.group(1))
        return None
    return ("num", value, pct)


_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+(?![a-zA-Z]))?|\.\d+)|(\\frac|\\sqrt|PI|[-+*/^(){}\[\]])"
                    r"|(?<![a-zA-Z\\])([a-df-hj-zA-Z])(?![a-zA-Z]))")
# single-letter variables; e and i are constants (Euler, imaginary unit): left to sympy


class _Parser:
    """Recursive descent over + - * / ^, \\frac, \\sqrt, pi, parentheses, implicit products."""

    def __init__(self, s: str):
        self.toks: list[str] = []
        pos = 0
        s = s.strip()
        while pos < len(s):
            m = _TOKEN.match(s, pos)
            if not m or m.end() == pos:
                self.toks = []
                self.bad = True
                return
            self.toks.append(m.group(1) or m.group(2) or "$" + m.group(3))
            pos = m.end()
        self.bad = not self.toks
        self.i = 0
        self.depth = 0

    def parse(self) -> Surd | None:
        if self.bad:
            return None
        try:
            v = self.expr()
        except (Refused, IndexError, ZeroDivisionError, RecursionError):
            return None
        if v is None or self.i != len(self.toks):
            return None
        return v

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expr(self) -> Surd | None:
        self.depth += 1
        if self.depth > 50:
            raise Refused("too deep")
        v = self.term()
        while v is not None and self.peek() in ("+", "-"):
            op = self.take()
            r = self.term()
            if r is None:
                return None
            v = v + r if op == "+" else v - r
        self.depth -= 1
        return v

    def term(self) -> Surd | None:
        v = self.unary()
        while v is not None:
            t = self.peek()
            if t in ("*", "/"):
                self.take()
                r = self.unary()
                if r is None:
                    return None
                v = v * r if t == "*" else v / r
            elif t is not None and (t[0].isdigit() or t[0] in "$#" or t in ("\\frac", "\\sqrt", "PI", "(", "{")):
                if t[0].isdigit() and self._is_number(self.toks[self.i - 1]):
                    return None  # "2 3" is not a product
                r = self.power()
                if r is None:
                    return None
                v = v * r
            else:
                break
        return v

    @staticmethod
    def _is_number(t: str) -> bool:
        return t[0].isdigit() or t[0] == "."

    def unary(self) -> Surd | None:
        t = self.peek()
        if t in ("-", "+"):
            self.take()
            v = self.unary()
            return None if v is None else (-v if t == "-" else v)
        return self.power()

    def power(self) -> Surd | None:
        base = self.atom()
        if base is None:
            return None
        if self.peek() == "^":
            self.take()
            if self.peek() in ("-", "+"):
                sign = self.take()
                e = self.atom()
                e = None if e is None else (-e if sign == "-" else e)
            else:
                e = self.atom()
            if e is None:
                return None
            return base.power(e)
        return base

    def group(self) -> Surd | None:
        """A braced group, or a single digit / token (``\\frac12``, ``\\sqrt3``)."""
        t = self.peek()
        if t == "{":
            return self.atom()
        if t is not None and t.lstrip("#").isdigit():
            self.take()
            t = t.lstrip("#")
            if len(t) > 1:  # \frac12 -> 1 then 2; \sqrt 10 -> sqrt(1) * 0, as LaTeX renders it
                self.toks[self.i - 1:self.i] = [t[0], "#" + t[1:]]
                return Surd.rational(int(t[0]))
            return Surd.rational(int(t))
        return self.atom()

    def atom(self) -> Surd | None:
        t = self.peek()
        if t is None:
            return None
        if self._is_number(t) or t[0] == "#":
            self.take()
            return parse_decimal(t.lstrip("#"))
        if t == "PI":
            self.take()
            return Surd({(1, 1, ()): Fraction(1)})
        if t[0] == "$":
            self.take()
            return Surd.variable(t[1:])
        if t in ("(", "{"):
            close = ")" if t == "(" else "}"
            self.take()
            v = self.expr()
            if v is None or self.peek() != close:
                return None
            self.take()
            return v
        if t == "\\frac":
            self.take()
            num = self.group()
            den = self.group()
            if num is None or den is None:
                return None
            return num / den
        if t == "\\sqrt":
            self.take()
            if self.peek() == "[":
                return None  # n-th roots: symbolic path
            v = self.group()
            return None if v is None else v.sqrt()
        return None


def equal(a, b, precision: int = 6) -> bool | None:
    """Decide equality of two canonical values; None when the kinds cannot be compared here."""
    ka, kb = a[0], b[0]
    if ka == "num" and kb == "num":
        va, pa = a[1], a[2]
        vb, pb = b[1], b[2]
        same = numbers_equal(va, vb, precision)
        if same:
            return True
        if pa != pb:  # 50% vs 0.5
            hundred = Surd.rational(100)
            if pa and numbers_equal(va / hundred, vb, precision):
                return True
            if pb and numbers_equal(va, vb / hundred, precision):
                return True
        return same
    if ka == "inf" and kb == "inf":
        return a[1] == b[1]
    if ka == "text" and kb == "text":
        return a[1] == b[1]
    if ka == "seq" and kb == "seq":
        if len(a[3]) != len(b[3]):
            return False
        if (a[1], a[2]) != (b[1], b[2]):
            return False
        return _all_equal(a[3], b[3], precision)
    if ka == "set" and kb == "set" or ka == "union" and kb == "union":
        return _unordered_equal(a[-1], b[-1], precision)
    if ka == "set" and kb == "seq" or ka == "seq" and kb == "set":
        return None  # "1, 2" vs "(1, 2)": let the symbolic path decide
    if ka == "matrix" and kb == "matrix":
        if len(a[1]) != len(b[1]) or any(len(r1) != len(r2) for r1, r2 in zip(a[1], b[1])):
            return False
        return all(_all_equal(r1, r2, precision) for r1, r2 in zip(a[1], b[1]))
    if {ka, kb} <= {"num", "inf"}:
        return False
    return None


def _all_equal(xs, ys, precision) -> bool | None:
    undecided = False
    for x, y in zip(xs, ys):
        r = equal(x, y, precision)
        if r is False:
            return False
        if r is None:
            undecided = True
    return None if undecided else True


def _unordered_equal(xs, ys, precision) -> bool | None:
    if len(xs) != len(ys):
        return None if len(set(map(repr, xs))) != len(xs) or len(set(map(repr, ys))) != len(ys) else False
    left = list(ys)
    for x in xs:
        for j, y in enumerate(left):
            if equal(x, y, precision) is True:
                del left[j]
                break
        else:
            return None if any(equal(x, y, precision) is None for y in left) else False
    return True
