"""Exact comparison of competition-style answers: rational expressions, equations, tuples, intervals.

The fast path in ``normalize`` stops at numbers; competition answers are often polynomials
in several variables (``x^2+2xy+y^2``), rational functions (``\\frac{x+1}{x-1}``), tuples
and sets of such expressions, intervals with parameters and equations. Sending those to
sympy costs tens of milliseconds each; here they are decided exactly in microseconds.

A value is a :class:`Ratio` of two :class:`~gradeset.verify.numbers.Surd` polynomials
(terms ``c * sqrt(r) * pi^k * x^a y^b ...`` with rational ``c``). Two ratios are equal
when ``n1 * d2 == n2 * d1`` after expansion, which is a decision, not a sample: the
expanded term dictionaries are canonical. Work is bounded by the size checks in
``numbers`` (term counts, bit lengths, exponents), so hostile text is refused quickly.
Nothing here evaluates model text: it is tokenised and parsed by a small grammar.

Parses are cached (LRU keyed by the text), since golds and common answers repeat.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from gradeset.verify import normalize
from gradeset.verify.numbers import Refused, Surd, close
from gradeset.verify.rewrite import rewrite

MAX_LEN = 600


class Ratio:
    """``num / den`` with polynomial surds; only what the parser needs."""

    __slots__ = ("num", "den")

    def __init__(self, num: Surd, den: Surd | None = None):
        if den is not None and not den.terms:
            raise Refused("division by zero")
        self.num = num
        self.den = den if den is not None else Surd.rational(1)

    @staticmethod
    def of(x):
        return x if isinstance(x, Ratio) or x is None else Ratio(x)

    @property
    def approx(self) -> bool:
        return self.num.approx or self.den.approx

    def has_variables(self) -> bool:
        return self.num.has_variables() or self.den.has_variables()

    def _simple(self) -> Ratio:
        # a single-term denominator folds into the numerator: keeps polynomials polynomials
        if len(self.den.terms) == 1:
            return Ratio(self.num * self.den.inverse())
        return self

    def __add__(self, o: Ratio) -> Ratio:
        o = Ratio.of(o)
        if self.den.key() == o.den.key():
            return Ratio(self.num + o.num, self.den)
        return Ratio(self.num * o.den + o.num * self.den, self.den * o.den)._simple()

    def __neg__(self) -> Ratio:
        return Ratio(-self.num, self.den)

    def __sub__(self, o: Ratio) -> Ratio:
        return self + (-Ratio.of(o))

    def __mul__(self, o: Ratio) -> Ratio:
        o = Ratio.of(o)
        return Ratio(self.num * o.num, self.den * o.den)._simple()

    def __truediv__(self, o: Ratio) -> Ratio:
        o = Ratio.of(o)
        if not o.num.terms:
            raise Refused("division by zero")
        return Ratio(self.num * o.den, self.den * o.num)._simple()

    def as_rational(self) -> Fraction | None:
        n, d = self.num.as_rational(), self.den.as_rational()
        return None if n is None or d is None or d == 0 else n / d

    def power(self, e: Ratio) -> Ratio:
        q = Ratio.of(e).as_rational()
        if q is None:
            raise Refused("non-rational exponent")
        if q.denominator != 1:
            if len(self.den.terms) == 1 and self.den.as_rational() == 1:
                return Ratio(self.num.power(Surd.rational(q)))
            raise Refused("root of a ratio")
        n = int(q)
        num, den = self.num.power(Surd.rational(abs(n))), self.den.power(Surd.rational(abs(n)))
        return (Ratio(num, den) if n >= 0 else Ratio(den, num))._simple()

    def sqrt(self) -> Ratio:
        if self.den.as_rational() != 1:
            q = self.as_rational()
            if q is None:
                raise Refused("sqrt of a ratio")
            return Ratio(Surd.rational(q).sqrt())
        return Ratio(self.num.sqrt())


def ratios_equal(a: Ratio, b: Ratio, precision: int = 6) -> bool:
    """Exact cross-multiplication; decimals without variables use the relative rule."""
    left, right = a.num * b.den, b.num * a.den
    if (a.approx or b.approx) and not (left.has_variables() or right.has_variables()):
        return close((a.num / a.den).value() if len(a.den.terms) == 1 else _value(a),
                     (b.num / b.den).value() if len(b.den.terms) == 1 else _value(b), precision)
    return left.key() == right.key()


def _value(r: Ratio) -> float:
    d = r.den.value()
    return r.num.value() / d if d else float("nan")


def proportional(a: Ratio, b: Ratio) -> bool:
    """``a = c * b`` for a nonzero rational ``c``: the same equation written ``2x+2y=2`` or ``x+y=1``."""
    p, q = a.num * b.den, b.num * a.den
    if not p.terms or not q.terms:
        return not p.terms and not q.terms
    k = next(iter(q.terms))
    if k not in p.terms:
        return False
    c = p.terms[k] / q.terms[k]
    return p.key() == (q * Surd.rational(c)).key()


_WORD = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z]{2,})(?![a-zA-Z])")
_KEEP = {"PI", "INF", "U"}


_STOP = frozenset({"and", "or", "the", "is", "no", "not", "of", "to", "yes", "if", "so", "by", "it", "we", "are",
                   "for", "all", "any", "but", "nor", "mph", "deg", "rad", "hrs", "min", "sec"})
# two-letter runs like "at", "an", "in" stay products: a^2+3at-4t^2 is algebra


class _ExprParser(normalize._Parser):
    """normalize's grammar over :class:`Ratio` values; ``xy`` is the product ``x*y``.

    Only short letter runs are products: words ("and", "no", units, anything of five or
    more letters) make the text prose, which is not an expression (``no`` is not ``on``)."""

    def __init__(self, s: str):
        words = [m.group(1) for m in _WORD.finditer(s) if m.group(1) not in _KEEP]
        if any(len(w) > 4 or w.lower() in _STOP for w in words):
            super().__init__("")
            return
        super().__init__(_WORD.sub(lambda m: m.group(1) if m.group(1) in _KEEP else " ".join(m.group(1)), s))

    def atom(self):
        return Ratio.of(super().atom())

    def group(self):
        return Ratio.of(super().group())


def parse_expr(s: str) -> Ratio | None:
    if not s or len(s) > MAX_LEN:
        return None
    try:
        return _ExprParser(s).parse()
    except (Refused, RecursionError, ValueError, ZeroDivisionError, OverflowError, IndexError):
        return None


# ------------------------------------------------------------------ structure
def _split(s: str) -> list[str] | None:
    parts, balanced = normalize.split_top_level(s)
    parts = [p.strip() for p in parts]
    return parts if balanced and all(parts) else None


@lru_cache(maxsize=65536)
def structure(text: str):
    """Cached parse of a rewritten answer into nested tuples, or None when outside the grammar."""
    if len(text) > MAX_LEN:
        return None
    s = normalize.clean(text)
    try:
        return _structure(s, 0)
    except (Refused, RecursionError, ValueError, ZeroDivisionError, OverflowError, IndexError):
        return None


def _structure(s: str, depth: int):
    if depth > 8 or not s:
        return None
    s = s.strip()
    if re.search(r"\bU\b", s):
        items = [_structure(p, depth + 1) for p in re.split(r"\bU\b", s)]
        return None if any(i is None or i[0] != "seq" for i in items) else ("union", tuple(items))
    if s.startswith("\\{") and s.endswith("\\}"):
        return _items("set", s[2:-2], depth)
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _split(s[1:-1]) and len(_split(s[1:-1]) or []) > 1:
        inner = _items("seq", s[1:-1], depth)
        return None if inner is None else ("seq", s[0] + s[-1], inner[1])
    parts = _split(s)
    if parts and len(parts) > 1:
        return _items("set", s, depth)
    if s.count("=") == 1 and not re.search(r"[<>]|\\[lg]eq?", s):
        lhs, rhs = s.split("=")
        a, b = parse_expr(lhs), parse_expr(rhs)
        return None if a is None or b is None else ("eq", a - b)
    if re.fullmatch(r"[-+]?\s*INF", s):
        return ("inf", -1 if s.startswith("-") else 1)
    v = parse_expr(s)
    return None if v is None else ("expr", v)


def _items(kind: str, s: str, depth: int):
    parts = _split(s)
    if not parts:
        return None
    items = tuple(_structure(p, depth + 1) for p in parts)
    return None if any(i is None for i in items) else (kind, items)


def equal(a, b, precision: int = 6) -> bool | None:
    """True/False when decided; None when the two shapes cannot be compared here."""
    ka, kb = a[0], b[0]
    if ka == "expr" and kb == "expr":
        return ratios_equal(a[1], b[1], precision)
    if ka == "eq" and kb == "eq":
        return proportional(a[1], b[1])
    if ka == "inf" and kb == "inf":
        return a[1] == b[1]
    if {ka, kb} == {"inf", "expr"}:
        return False
    if ka == "seq" and kb == "seq":
        if a[1] != b[1] or len(a[2]) != len(b[2]):
            return False
        results = [equal(x, y, precision) for x, y in zip(a[2], b[2])]
        return False if False in results else (None if None in results else True)
    if ka == kb and ka in ("set", "union"):
        xs, ys = a[-1], b[-1]
        if len(xs) != len(ys):
            return None
        left = list(ys)
        for x in xs:
            j = next((j for j, y in enumerate(left) if equal(x, y, precision) is True), None)
            if j is None:
                return False if all(equal(x, y, precision) is False for y in left) else None
            del left[j]
        return True
    if {ka, kb} <= {"expr", "eq"}:
        return False if ka == kb else None
    return None


def decide(gold: str, answer: str, precision: int = 6) -> bool | None:
    """Exact verdict for two answer texts after the rewrites, or None (let sympy try)."""
    g, a = rewrite(gold), rewrite(answer)
    if (g, a) != (gold, answer):
        cg, ca = normalize.canonical(g), normalize.canonical(a)
        if cg is not None and ca is not None:
            r = normalize.equal(cg, ca, precision)
            if r is not None:
                return r
    sg, sa = structure(g), structure(a)
    if sg is not None and sa is not None and {sg[0], sa[0]} == {"eq", "expr"}:
        # "y = -x/2 + 3/4" against "2x + 4y - 3 = 0": the dropped "y =" was part of an equation
        rg, ra = structure(gold), structure(answer)
        if rg is not None and ra is not None and rg[0] == ra[0] == "eq":
            return proportional(rg[1], ra[1])
    if sg is None or sa is None:
        return None
    if sg[0] == "set" and sa[0] == "seq" and sa[1] == "()" or sa[0] == "set" and sg[0] == "seq" and sg[1] == "()":
        # "2, 9" against "(2, 9)": an unlabelled list against a tuple, order kept
        xs, ys = (sg[1], sa[2]) if sg[0] == "set" else (sg[2], sa[1])
        if len(xs) != len(ys):
            return False
        results = [equal(x, y, precision) for x, y in zip(xs, ys)]
        return False if False in results else (None if None in results else True)
    return equal(sg, sa, precision)
