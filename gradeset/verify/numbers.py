"""Exact arithmetic on the answers models actually write, without sympy.

A value is a :class:`Surd`: a finite sum of ``c * sqrt(r) * pi**k`` with rational ``c``,
square-free ``r`` and integer ``k``. Square roots of distinct square-free integers are
linearly independent over the rationals and pi is transcendental, so two surds are
equal exactly when their term dictionaries are equal: equality is decided, not guessed.
The set is closed under +, -, * and division by a single term, which covers integers,
decimals, fractions, mixed numbers, percentages, radicals, pi, powers and scientific
notation. Anything else returns None and goes to the symbolic path.

Work is bounded: exponents and operand sizes are capped, so ``9^{9^{9^9}}`` is refused
in microseconds instead of computed.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_BITS = 4096
MAX_EXPONENT = MAX_BITS  # the real bound is on the result's size (bits), checked before multiplying
MAX_RADICAND = 10**12

Key = tuple[int, int, tuple]  # (square-free radicand, power of pi, monomial ((var, exp), ...))
ONE: Key = (1, 0, ())


def _mono_mul(a: tuple, b: tuple) -> tuple:
    if not a:
        return b
    if not b:
        return a
    exps = dict(a)
    for v, e in b:
        exps[v] = exps.get(v, 0) + e
    return tuple(sorted((v, e) for v, e in exps.items() if e))


class Refused(Exception):
    """The fast path cannot represent this value (not an error: fall back)."""


def squarefree_split(n: int) -> tuple[int, int]:
    """n = k*k*s with s square-free; returns (k, s). Bounded trial division."""
    if n <= 0:
        raise Refused("radicand must be positive")
    if n > MAX_RADICAND:
        raise Refused("radicand too large")
    k, s = 1, 1
    d = 2
    while d * d <= n:
        if n % (d * d) == 0:
            n //= d * d
            k *= d
            continue
        if n % d == 0:
            n //= d
            s *= d
        d += 1
    return k, s * n


class Surd:
    __slots__ = ("terms", "approx")

    def __init__(self, terms: dict[Key, Fraction] | None = None, approx: bool = False):
        self.terms = {k: v for k, v in (terms or {}).items() if v != 0}
        self.approx = approx

    @classmethod
    def rational(cls, q: Fraction | int, approx: bool = False) -> Surd:
        return cls({ONE: Fraction(q)}, approx)

    @classmethod
    def variable(cls, name: str) -> Surd:
        return cls({(1, 0, ((name, 1),)): Fraction(1)})

    def has_variables(self) -> bool:
        return any(k[2] for k in self.terms)

    def _check(self) -> Surd:
        for c in self.terms.values():
            if c.numerator.bit_length() > MAX_BITS or c.denominator.bit_length() > MAX_BITS:
                raise Refused("number too large")
        return self

    def __add__(self, other: Surd) -> Surd:
        t = dict(self.terms)
        for k, v in other.terms.items():
            t[k] = t.get(k, Fraction(0)) + v
        return Surd(t, self.approx or other.approx)._check()

    def __neg__(self) -> Surd:
        return Surd({k: -v for k, v in self.terms.items()}, self.approx)

    def __sub__(self, other: Surd) -> Surd:
        return self + (-other)

    def __mul__(self, other: Surd) -> Surd:
        t: dict[Key, Fraction] = {}
        if len(self.terms) * len(other.terms) > 400:
            raise Refused("expansion too large")
        for (r1, p1, m1), c1 in self.terms.items():
            for (r2, p2, m2), c2 in other.terms.items():
                k, s = squarefree_split(r1 * r2)
                key = (s, p1 + p2, _mono_mul(m1, m2))
                t[key] = t.get(key, Fraction(0)) + c1 * c2 * k
        return Surd(t, self.approx or other.approx)._check()

    def as_rational(self) -> Fraction | None:
        if not self.terms:
            return Fraction(0)
        if len(self.terms) == 1 and ONE in self.terms:
            return self.terms[ONE]
        return None

    def inverse(self) -> Surd:
        if len(self.terms) != 1:
            raise Refused("division by a sum")
        ((r, p, m), c), = self.terms.items()
        # 1/(c sqrt(r) pi^p x^k) = sqrt(r) / (c r) * pi^-p x^-k
        return Surd({(r, -p, tuple((v, -e) for v, e in m)): 1 / (c * r)}, self.approx)

    def __truediv__(self, other: Surd) -> Surd:
        if not other.terms:
            raise Refused("division by zero")
        return self * other.inverse()

    def power(self, exp: Surd) -> Surd:
        e = exp.as_rational()
        if e is None or exp.approx:
            raise Refused("non-rational exponent")
        if e.denominator == 2 and e.numerator > 0:
            return self.power(Surd.rational(e.numerator)).sqrt()
        if e.denominator != 1 or abs(e) > MAX_EXPONENT:
            raise Refused("exponent")
        n = int(e)
        base_bits = max((max(c.numerator.bit_length(), c.denominator.bit_length()) for c in self.terms.values()),
                        default=0)
        if base_bits * abs(n) > MAX_BITS:
            raise Refused("power too large")
        base = self if n >= 0 else Surd.rational(1) / self
        q = base.as_rational()
        if q is not None:  # a plain rational: one exact big-integer power, no float anywhere
            return Surd.rational(q ** abs(n), self.approx)._check()
        if len(base.terms) > 1 and abs(n) > 64:
            raise Refused("expansion too large")
        result = Surd.rational(1, self.approx)
        square, k = base, abs(n)
        while k:  # square-and-multiply: log2(n) products, each size-checked
            if k & 1:
                result = result * square
            k >>= 1
            if k:
                square = square * square
        return result

    def sqrt(self) -> Surd:
        q = self.as_rational()
        if q is None or q < 0:
            raise Refused("sqrt of a non-rational or negative")
        if q == 0:
            return Surd()
        num = q.numerator * q.denominator  # sqrt(a/b) = sqrt(ab)/b
        k, s = squarefree_split(num)
        return Surd({(s, 0, ()): Fraction(k, q.denominator)}, self.approx)

    def value(self) -> float:
        total = 0.0
        for (r, p, m), c in self.terms.items():
            if m:
                return math.nan
            try:
                total += float(c) * math.sqrt(r) * math.pi ** p
            except OverflowError:
                return math.inf
        return total

    def key(self) -> tuple:
        return tuple(sorted(self.terms.items()))

    def __repr__(self) -> str:
        # canonical text (sorted terms): equal exact values print the same (maj@k keys use it)
        return f"Surd({self.key()!r})"


_DECIMAL = re.compile(r"(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d*))?(?:[eE]([-+]?\d{1,4}))?")


def parse_decimal(s: str) -> Surd | None:
    """A plain number literal: ``42``, ``-3.5``, ``.4``, ``1,234,567.8``, ``2.5e-3``."""
    s = s.strip()
    if not s:
        return None
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    m = _DECIMAL.fullmatch(s)
    if not m or not (m.group(1) or m.group(2)):
        return None
    whole = (m.group(1) or "0").replace(",", "")
    frac = m.group(2) or ""
    value = Fraction(int(whole + frac), 10 ** len(frac)) if frac else Fraction(int(whole))
    if m.group(3):
        e = int(m.group(3))
        if abs(e) > 400:
            return None
        value *= Fraction(10) ** e
    approx = bool(frac.rstrip("0")) or bool(m.group(3) and value.denominator != 1)
    return Surd.rational(sign * value, approx)


def numbers_equal(a: Surd, b: Surd, precision: int = 6) -> bool | None:
    """Exact unless a decimal is involved, then :func:`close`.

    None when a decimal meets a variable (``0.5x`` vs ``x/2`` is left to sympy).
    """
    if a.approx or b.approx:
        if a.has_variables() or b.has_variables():
            return None
        return close(a.value(), b.value(), precision)
    return a.key() == b.key()


def close(va: float, vb: float, precision: int = 6) -> bool:
    """Decimals: equal at ``precision`` places *and* within a relative tolerance.

    Rounding alone makes every number below 10^-precision equal to every other
    (``3.1e-8`` = ``3.4e-8`` = 0), so the relative error must also be small:
    5 * 10^-(precision-1), which every correctly rounded answer of 0.01 or more meets
    (``0.024390`` for 1/41 is still right) while tiny values need their own digits to agree.
    A relative error below 10^-(precision+2) is float noise and always equal.
    """
    if math.isinf(va) or math.isinf(vb) or math.isnan(va) or math.isnan(vb):
        return False
    scale = max(abs(va), abs(vb))
    if scale == 0:
        return True
    rel = abs(va - vb) / scale
    if rel <= 10 ** -(precision + 2):
        return True
    return round(va, precision) == round(vb, precision) and rel <= 5 * 10 ** -(precision - 1)
