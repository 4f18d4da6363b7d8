"""Turn assert-style tests into (expression to run in the sandbox, check done here) pairs.

``assert add(2, 3) == 5`` becomes the call ``add(2, 3)``, sent into the sandbox, and the
comparison ``<value> == 5``, evaluated here on the plain value that comes back. The test
source is only parsed (``ast.parse``), never executed in this process: the small evaluator
below knows literals, arithmetic, comparisons and a few pure builtins (``abs``, ``round``,
``len``, ``sorted``, ``math.isclose`` …) and nothing else. Whatever it does not know becomes
a *leaf*: an expression run in the sandbox whose result must be a plain value.

Expected values therefore stay in the parent: a program can only pass by returning the
right values. Tests with other statements (loops, helper functions, try/except) cannot be
split this way; they run whole inside the sandbox (``Fallback``), with ``==`` rewritten to
compare plain copies of both sides.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

LEAF = "__gs_leaf_"
# builtins evaluated here on plain values
_FUNCS = {"abs": abs, "round": round, "len": len, "sorted": sorted, "set": set, "frozenset": frozenset,
          "tuple": tuple, "list": list, "sum": sum, "min": min, "max": max, "all": all, "any": any,
          "int": int, "float": float, "str": str, "bool": bool, "dict": dict, "complex": complex,
          "isinstance": isinstance, "type": type, "reversed": lambda x: list(reversed(x)),
          "enumerate": lambda *a, **k: list(enumerate(*a, **k)), "zip": lambda *a: list(zip(*a)),
          "divmod": divmod, "chr": chr, "ord": ord, "repr": repr, "hex": hex, "bin": bin, "oct": oct,
          "range": lambda *a: _range(*a)}
# builtin type names, usable as values (``type(f(x)) is list``, ``isinstance(f(x), (int, float))``)
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple, "dict": dict,
          "set": set, "frozenset": frozenset, "complex": complex, "bytes": bytes}
_MATH_FUNCS = {"isclose": math.isclose, "fabs": math.fabs, "sqrt": math.sqrt, "floor": math.floor,
               "ceil": math.ceil, "isnan": math.isnan, "isinf": math.isinf}
_MATH_CONSTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
# one-argument conversions that are folded into the leaf (a generator becomes a list in the sandbox)
_FOLD = {"list", "tuple", "set", "frozenset", "sorted", "len", "sum", "min", "max", "any", "all", "str",
         "dict", "bool", "int", "float"}
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr, ast.BitXor,
           ast.LShift, ast.RShift)
_MAX_ITEMS = 10_000_000


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > _MAX_ITEMS:
        raise EvalError("range too large")
    return r


class NotSplittable(Exception):
    """The test needs to run whole in the sandbox."""


@dataclass
class Check:
    """One assert: ``expr`` is evaluated here with ``leaves`` (indexes into the call list) bound."""

    source: str
    expr: ast.expr
    leaves: list[int]


@dataclass
class Split:
    checks: list[Check] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # imports the leaves need


@dataclass
class Fallback:
    source: str  # the test, ``==``/``!=`` rewritten to compare plain values
    why: str


class _Builder:
    def __init__(self, calls: list[str], env: dict[str, Any], subst: dict[str, ast.expr], math_names: dict):
        self.calls, self.env, self.subst, self.math_names = calls, env, subst, math_names
        self.leaves: list[int] = []

    def leaf(self, node: ast.expr) -> ast.Name:
        src = ast.unparse(_Inline(self.env, self.subst).visit(ast.parse(ast.unparse(node), mode="eval")).body)
        self.calls.append(src)
        self.leaves.append(len(self.calls) - 1)
        return ast.Name(id=f"{LEAF}{len(self.calls) - 1}", ctx=ast.Load())

    def is_leaf(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id.startswith(LEAF)

    def drop_last_leaf(self) -> None:
        self.calls.pop()
        self.leaves.pop()

    def func_of(self, node: ast.expr) -> tuple[str, Any] | None:
        if isinstance(node, ast.Name) and node.id not in self.env and node.id not in self.subst:
            if node.id in _FUNCS:
                return node.id, _FUNCS[node.id]
            if node.id in self.math_names:
                return node.id, self.math_names[node.id]
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math"
                and node.attr in _MATH_FUNCS):
            return node.attr, _MATH_FUNCS[node.attr]
        return None

    def build(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.Name):
            if node.id in self.subst:
                return self.build(self.subst[node.id])
            if node.id in self.env:
                return ast.Constant(value=_Const(self.env[node.id]))
            if node.id in _TYPES:
                return ast.Constant(value=_Const(_TYPES[node.id]))
            return self.leaf(node)
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math"
                and node.attr in _MATH_CONSTS):
            return ast.Constant(value=_MATH_CONSTS[node.attr])
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return type(node)(elts=[self.build(e) for e in node.elts], **({"ctx": ast.Load()}
                                                                          if not isinstance(node, ast.Set) else {}))
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            return ast.Dict(keys=[self.build(k) for k in node.keys], values=[self.build(v) for v in node.values])
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(op=node.op, operand=self.build(node.operand))
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
            return ast.BinOp(left=self.build(node.left), op=node.op, right=self.build(node.right))
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(op=node.op, values=[self.build(v) for v in node.values])
        if isinstance(node, ast.Compare):
            return ast.Compare(left=self.build(node.left), ops=node.ops, comparators=[self.build(c) for c in
                                                                                      node.comparators])
        if isinstance(node, ast.IfExp):
            return ast.IfExp(test=self.build(node.test), body=self.build(node.body), orelse=self.build(node.orelse))
        if isinstance(node, ast.Subscript):
            return ast.Subscript(value=self.build(node.value), slice=self.build(node.slice), ctx=ast.Load())
        if isinstance(node, ast.Slice):
            return ast.Slice(*(None if p is None else self.build(p) for p in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args):
            fn = self.func_of(node.func)
            has_lambda = any(isinstance(a, ast.Lambda) for a in [*node.args, *(k.value for k in node.keywords)])
            if fn is not None and all(k.arg for k in node.keywords) and not has_lambda:
                args = [self.build(a) for a in node.args]
                if fn[0] in _FOLD and len(args) == 1 and not node.keywords and self.is_leaf(args[0]):
                    self.drop_last_leaf()
                    return self.leaf(node)
                return ast.Call(func=ast.Name(id=fn[0], ctx=ast.Load()), args=args,
                                keywords=[ast.keyword(arg=k.arg, value=self.build(k.value)) for k in node.keywords])
        return self.leaf(node)


class _Const:
    """A value from a literal assignment in the test (``expected = [1, 2]``)."""

    def __init__(self, value: Any):
        self.value = value


class _Inline(ast.NodeTransformer):
    """Leaf source with the test's literal variables and ``candidate`` substituted."""

    def __init__(self, env: dict[str, Any], subst: dict[str, ast.expr]):
        self.env, self.subst = env, subst

    def visit_Name(self, node: ast.Name):
        if node.id in self.subst:
            return self.subst[node.id]
        if node.id in self.env:
            return ast.parse(repr(self.env[node.id]), mode="eval").body
        return node


def _literal(node: ast.expr, env: dict[str, Any]) -> Any:
    b = _Builder([], env, {}, {})
    built = b.build(node)
    if b.leaves:
        raise NotSplittable("assignment is not a literal")
    value = evaluate(built, {})
    repr_ok = ast.literal_eval(repr(value)) == value if not isinstance(value, float) or value == value else True
    if not repr_ok:
        raise NotSplittable("assignment value cannot be written back as a literal")
    return value


def split_test(src: str, calls: list[str]) -> Split | Fallback:
    """Split one test (a string of Python) into checks, appending its leaves to ``calls``."""
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise ValueError(f"test is not valid Python: {exc.msg} (line {exc.lineno})") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ValueError(f"test cannot be parsed: {type(exc).__name__}") from None
    mark = len(calls)
    try:
        return _split_body(tree.body, calls, {}, {}, {}, {})
    except (NotSplittable, RecursionError, ValueError, TypeError, OverflowError) as exc:
        del calls[mark:]
        return Fallback(rewrite_eq(tree), str(exc))


def _split_body(body, calls, env, subst, math_names, defs, out: Split | None = None) -> Split:
    out = out or Split()
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            b = _Builder(calls, env, subst, math_names)
            expr = b.build(stmt.test)
            out.checks.append(Check(ast.unparse(stmt.test), expr, b.leaves))
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            out.setup.append(ast.unparse(stmt))
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "math":
                for a in stmt.names:
                    if a.name in _MATH_FUNCS:
                        math_names[a.asname or a.name] = _MATH_FUNCS[a.name]
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            env[stmt.targets[0].id] = _literal(stmt.value, env)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        elif isinstance(stmt, ast.FunctionDef) and len(stmt.args.args) == 1 and not stmt.decorator_list:
            defs[stmt.name] = stmt  # HumanEval's def check(candidate): …
        elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
              and stmt.value.func.id in defs and len(stmt.value.args) == 1 and not stmt.value.keywords):
            fn = defs[stmt.value.func.id]
            inner = dict(subst)
            inner[fn.args.args[0].arg] = stmt.value.args[0]
            _split_body(fn.body, calls, dict(env), inner, math_names, dict(defs), out)
        else:
            raise NotSplittable(f"line {stmt.lineno}: {type(stmt).__name__} statement")
    return out


class _RewriteEq(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            call = ast.Call(func=ast.Name(id="__gs_eq__", ctx=ast.Load()), args=[node.left, node.comparators[0]],
                            keywords=[])
            return call if isinstance(node.ops[0], ast.Eq) else ast.UnaryOp(op=ast.Not(), operand=call)
        return node


def rewrite_eq(tree: ast.Module) -> str:
    return ast.unparse(ast.fix_missing_locations(_RewriteEq().visit(tree)))


# ---------------------------------------------------------------- evaluation on plain values
class EvalError(Exception):
    pass


def _size(x: Any) -> int:
    return len(x) if isinstance(x, str | bytes | list | tuple) else 1


def _binop(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and (
            abs(b) > 100_000 or (abs(a) > 1 and abs(b) * max(a.bit_length(), 1) > 1_000_000)):
        raise EvalError("power too large")
    if isinstance(op, ast.LShift | ast.RShift) and isinstance(b, int) and abs(b) > 1_000_000:
        raise EvalError("shift too large")
    if isinstance(op, ast.Mult) and isinstance(a, int | bool) != isinstance(b, int | bool):
        n, seq = (a, b) if isinstance(a, int) else (b, a)
        if isinstance(n, int) and n * _size(seq) > _MAX_ITEMS:
            raise EvalError("repetition too large")
    fn = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b,
          ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b, ast.Pow: lambda: a ** b,
          ast.BitAnd: lambda: a & b, ast.BitOr: lambda: a | b, ast.BitXor: lambda: a ^ b,
          ast.LShift: lambda: a << b, ast.RShift: lambda: a >> b}[type(op)]
    return fn()


def _compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    if isinstance(op, ast.Is | ast.IsNot):
        same = (a is b) if (a is None or b is None or isinstance(a, bool) or isinstance(b, bool)) else (
            type(a) is type(b) and a == b)
        return same if isinstance(op, ast.Is) else not same
    return {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Lt: lambda: a < b, ast.LtE: lambda: a <= b,
            ast.Gt: lambda: a > b, ast.GtE: lambda: a >= b, ast.In: lambda: a in b,
            ast.NotIn: lambda: a not in b}[type(op)]()


def evaluate(node: ast.expr, leaves: dict[int, Any]) -> Any:
    """Evaluate a split check on plain values; only the node kinds ``_Builder`` produces."""
    if isinstance(node, ast.Constant):
        return node.value.value if isinstance(node.value, _Const) else node.value
    if isinstance(node, ast.Name):
        if node.id.startswith(LEAF):
            return leaves[int(node.id[len(LEAF):])]
        raise EvalError(f"unknown name {node.id}")
    if isinstance(node, ast.Tuple):
        return tuple(evaluate(e, leaves) for e in node.elts)
    if isinstance(node, ast.List):
        return [evaluate(e, leaves) for e in node.elts]
    if isinstance(node, ast.Set):
        return {evaluate(e, leaves) for e in node.elts}
    if isinstance(node, ast.Dict):
        return {evaluate(k, leaves): evaluate(v, leaves) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp):
        v = evaluate(node.operand, leaves)
        return {ast.Not: lambda: not v, ast.USub: lambda: -v, ast.UAdd: lambda: +v, ast.Invert: lambda: ~v}[
            type(node.op)]()
    if isinstance(node, ast.BinOp):
        return _binop(node.op, evaluate(node.left, leaves), evaluate(node.right, leaves))
    if isinstance(node, ast.BoolOp):
        result = None
        for v in node.values:
            result = evaluate(v, leaves)
            if isinstance(node.op, ast.And) and not result or isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, leaves)
        for op, comp in zip(node.ops, node.comparators):
            right = evaluate(comp, leaves)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return evaluate(node.body if evaluate(node.test, leaves) else node.orelse, leaves)
    if isinstance(node, ast.Subscript):
        return evaluate(node.value, leaves)[evaluate(node.slice, leaves)]
    if isinstance(node, ast.Slice):
        return slice(*(None if p is None else evaluate(p, leaves) for p in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn = _FUNCS.get(node.func.id) or _MATH_FUNCS.get(node.func.id)
        if fn is None:
            raise EvalError(f"unknown function {node.func.id}")
        args = [evaluate(a, leaves) for a in node.args]
        kwargs = {k.arg: evaluate(k.value, leaves) for k in node.keywords}
        if fn is str and args and isinstance(args[0], int) and abs(args[0]).bit_length() > 10_000:
            raise EvalError("number too large to format")
        return fn(*args, **kwargs)
    raise EvalError(f"cannot evaluate {type(node).__name__}")
