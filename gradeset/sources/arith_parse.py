"""A small, safe parser for seed 002's arithmetic questions, with exact answers.

Shapes: ``a+b=?``, ``a*b=?``, ``x-a=b,x=?``, ``a-x=b,x=?``, ``b*x=a,x=?``, ``a/x=b,x=?``
and, for the variants we write, longer expressions with + - * / and parentheses such as
``(x+12)*3=57,x=?``. Values are ``Fraction`` so nothing is rounded; the unknown ``x`` may
appear once and is found by inverting the operations around it (so ``a/x=b`` works).

Never ``eval``: a tokenizer with a fixed alphabet, a recursive-descent parser with depth,
length and digit limits, and arithmetic on ``Fraction``. Anything else is ``ParseError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_LEN = 200
MAX_DIGITS = 30
MAX_DEPTH = 40


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Var:
    name: str = "x"


@dataclass(frozen=True)
class Neg:
    operand: object


@dataclass(frozen=True)
class Bin:
    op: str
    left: object
    right: object


Node = Num | Var | Neg | Bin
PREC = {"+": 1, "-": 1, "*": 2, "/": 2}

_TOKEN = re.compile(r"\s*(?:(\d+)|([xX])|([-+*/()×÷]))")


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_LEN:
        raise ParseError(f"longer than {MAX_LEN} characters")
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ParseError(f"unexpected character {text[pos]!r}")
        num, var, op = m.groups()
        if num is not None:
            if len(num) > MAX_DIGITS:
                raise ParseError(f"number longer than {MAX_DIGITS} digits")
            out.append(num)
        elif var is not None:
            out.append("x")
        else:
            out.append({"×": "*", "÷": "/"}.get(op, op))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]):
        self.t = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end")
        self.i += 1
        return tok

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ParseError("nested too deeply")
        node = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            node = Bin(op, node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.unary(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            node = Bin(op, node, self.unary(depth))
        return node

    def unary(self, depth: int) -> Node:
        if self.peek() == "-":
            self.take()
            return Neg(self.unary(depth + 1))
        if self.peek() == "+":
            self.take()
            return self.unary(depth + 1)
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr(depth + 1)
            if self.take() != ")":
                raise ParseError("missing )")
            return node
        if tok == "x":
            return Var()
        if tok.isdigit():
            # implicit product "2x" = 2*x
            if self.peek() == "x":
                self.take()
                return Bin("*", Num(int(tok)), Var())
            return Num(int(tok))
        raise ParseError(f"unexpected {tok!r}")


def parse_expr(text: str) -> Node:
    tokens = tokenize(text)
    if not tokens:
        raise ParseError("empty expression")
    p = _Parser(tokens)
    node = p.expr(0)
    if p.peek() is not None:
        raise ParseError(f"unexpected {p.peek()!r}")
    return node


def count_var(node: Node) -> int:
    if isinstance(node, Var):
        return 1
    if isinstance(node, Num):
        return 0
    if isinstance(node, Neg):
        return count_var(node.operand)  # type: ignore[arg-type]
    return count_var(node.left) + count_var(node.right)  # type: ignore[union-attr]


def evaluate(node: Node, x: Fraction | None = None) -> Fraction:
    if isinstance(node, Num):
        return Fraction(node.value)
    if isinstance(node, Var):
        if x is None:
            raise ParseError("x has no value")
        return x
    if isinstance(node, Neg):
        return -evaluate(node.operand, x)  # type: ignore[arg-type]
    a = evaluate(node.left, x)  # type: ignore[union-attr]
    b = evaluate(node.right, x)  # type: ignore[union-attr]
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    if b == 0:
        raise ParseError("division by zero")
    return a / b


def solve(lhs: Node, rhs: Node) -> Fraction:
    """x from ``lhs = rhs`` with x once in total, by inverting the operations around it."""
    if count_var(lhs) + count_var(rhs) != 1:
        raise ParseError("x must appear exactly once")
    if count_var(rhs):
        lhs, rhs = rhs, lhs
    value = evaluate(rhs)
    node = lhs
    while not isinstance(node, Var):
        if isinstance(node, Neg):
            value = -value
            node = node.operand  # type: ignore[assignment]
            continue
        assert isinstance(node, Bin)
        if count_var(node.left):
            k = evaluate(node.right)
            if node.op == "+":
                value = value - k
            elif node.op == "-":
                value = value + k
            elif node.op == "*":
                if k == 0:
                    raise ParseError("x is multiplied by 0")
                value = value / k
            else:
                if k == 0:
                    raise ParseError("division by zero")
                value = value * k
            node = node.left  # type: ignore[assignment]
        else:
            k = evaluate(node.left)
            if node.op == "+":
                value = value - k
            elif node.op == "-":
                value = k - value
            elif node.op == "*":
                if k == 0:
                    raise ParseError("x is multiplied by 0")
                value = value / k
            else:
                if value == 0:
                    raise ParseError("no solution (k/x = 0)")
                value = k / value
            node = node.right  # type: ignore[assignment]
    return value


@dataclass
class Question:
    """A parsed question: ``expr=?`` (lhs only) or an equation ``lhs=rhs`` asking for x."""

    prefix: str  # text before the arithmetic (kept when writing variants)
    lhs: Node
    rhs: Node | None  # None for "expr=?"
    suffix: str  # ",x=?" or "" / "=?"

    @property
    def answer(self) -> Fraction:
        if self.rhs is None:
            if count_var(self.lhs):
                raise ParseError("x in an '=?' question")
            return evaluate(self.lhs)
        return solve(self.lhs, self.rhs)


_TAIL = re.compile(r"[0-9xX+\-*/\u00d7\u00f7()=?, ]+$")


def parse_question(text: str) -> Question:
    """Parse the arithmetic at the end of text; a prefix such as ``Solve:`` is kept as is."""
    s = text.strip()
    if len(s) > MAX_LEN * 4:
        raise ParseError("too long for an arithmetic question")
    m = _TAIL.search(s)
    if not m:
        raise ParseError("not an arithmetic question")
    tail = m.group(0)
    # the tail must start at a token boundary: "for x: 2x+5=15" must not swallow a word's x
    start = m.start()
    while start < len(s) and s[start] in "xX" and start > 0 and s[start - 1].isalpha():
        start += 1
    tail = s[start:]
    prefix = s[:start]
    lead = len(tail) - len(tail.lstrip())
    prefix, tail = prefix + tail[:lead], tail.strip()
    compact = tail.replace(" ", "")
    if not re.search(r"\d", compact):
        raise ParseError("not an arithmetic question")
    if prefix and not re.search(r"[:\n?.]\s*$|\s$", prefix):
        raise ParseError("not an arithmetic question")
    if compact.lower().endswith(",x=?"):
        body, suffix = compact[:-4], ",x=?"
    elif compact.endswith("=?"):
        body, suffix = compact[:-2], "=?"
    else:
        body, suffix = compact, ""
    if "?" in body or "," in body:
        raise ParseError("not an arithmetic question")
    if suffix == "=?":
        if "=" in body:
            raise ParseError("more than one '='")
        q = Question(prefix, parse_expr(body), None, "=?")
        if count_var(q.lhs):
            raise ParseError("x in an '=?' question")
        return q
    if body.count("=") != 1:
        raise ParseError("expected one '=' in an equation")
    left, _, right = body.partition("=")
    q = Question(prefix, parse_expr(left), parse_expr(right), suffix)
    if count_var(q.lhs) + count_var(q.rhs) != 1:  # type: ignore[arg-type]
        raise ParseError("x must appear exactly once")
    return q


def render(node: Node, parent_prec: int = 0, right_side: bool = False) -> str:
    """Compact text (``x+55``), parentheses only where precedence needs them."""
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Var):
        return "x"
    if isinstance(node, Neg):
        inner = render(node.operand, 3)  # type: ignore[arg-type]
        return f"-{inner}" if parent_prec == 0 else f"(-{inner})"
    assert isinstance(node, Bin)
    prec = PREC[node.op]
    left = render(node.left, prec)  # type: ignore[arg-type]
    right = render(node.right, prec, right_side=True)  # type: ignore[arg-type]
    text = f"{left}{node.op}{right}"
    if prec < parent_prec or (right_side and prec == parent_prec):
        return f"({text})"
    return text


def render_question(q: Question) -> str:
    if q.rhs is None:
        return f"{q.prefix}{render(q.lhs)}=?"
    return f"{q.prefix}{render(q.lhs)}={render(q.rhs)}{q.suffix}"


def format_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
