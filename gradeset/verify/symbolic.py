"""The slow, general path: LaTeX parsed into sympy objects by latex2sympy2_extended.

Used only when the fast exact path (``normalize``) cannot decide. The parser is an ANTLR
grammar that builds sympy objects; nothing here calls ``sympify`` or ``parse_expr`` on
model or dataset text (math-verify's ``ExprExtractionConfig`` does, so it is never used). It can still run for a very long time on ``9^{9^{9^9}}``: callers run it
inside a worker process that is killed at the time limit (see ``pool``). math-verify's
own SIGALRM timeouts are switched off because they break in threads.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache


def available() -> bool:
    """math-verify installed (the ``symbolic`` extra)? The exact path works without it."""
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None


def _mv():
    from gradeset.errors import require

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return require("math_verify", "symbolic", "symbolic math equivalence")


@lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple:
    """Gold answers are dataset text: LaTeX and plain numbers, boxed or not.

    A dataset downloaded from a hub is someone else's text too, and math-verify's expression
    parser evaluates Python: it only sees golds made of math characters, single-letter
    variables and standard function names (``_plain_math``); everything else is LaTeX only.
    """
    mv = _mv()
    configs = [mv.LatexExtractionConfig(boxed_match_priority=0)]
    if _plain_math(gold):
        configs.append(mv.ExprExtractionConfig())
    text = gold if ("$" in gold or "\\boxed" in gold or "\\(" in gold or "\\[" in gold) else f"${gold}$"
    parsed = _quiet(mv.parse, text, configs)
    if not parsed and text != gold:
        parsed = _quiet(mv.parse, gold, configs)
    return tuple(parsed)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_SAFE_NAMES = frozenset({"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
                         "tanh", "log", "ln", "exp", "sqrt", "pi", "oo", "inf", "infty"})


def _plain_math(gold: str) -> bool:
    """Gold text the expression parser may see: math characters only, and no name it could
    call (single letters and standard function names only; no quotes, dots or dunders)."""
    if len(gold) > 200 or re.search(r"[^0-9A-Za-z\s+\-*/^().,=<>|!\[\]{}]", gold) or "__" in gold:
        return False
    if re.search(r"\.\s*[A-Za-z_]", gold):
        return False
    return all(len(name) == 1 or name in _SAFE_NAMES for name in _IDENT.findall(gold))


@lru_cache(maxsize=4096)
def parse_answer(answer: str, whole_text: bool = False) -> tuple:
    """A model's answer: LaTeX only (never the expression parser, which evaluates Python).

    Cached by the answer text: the samples of one prompt often end in the same answer."""
    mv = _mv()
    config = [mv.LatexExtractionConfig(boxed_match_priority=0)]
    text = answer if whole_text else "\\boxed{" + answer + "}"
    return tuple(_quiet(mv.parse, text, config))


def _quiet(fn, *args):
    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, parsing_timeout=None)
        except Exception:
            return []


def symbolic_equal(gold_parsed, pred_parsed, precision: int = 6, strict: bool = True,
                   allow_set_relation_comp: bool = False) -> bool:
    if not gold_parsed or not pred_parsed:
        return False
    mv = _mv()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ok = bool(mv.verify(list(gold_parsed), list(pred_parsed), float_rounding=precision, strict=strict,
                                allow_set_relation_comp=allow_set_relation_comp, timeout_seconds=None))
        except Exception:
            return False
    return ok and not _numbers_apart(gold_parsed, pred_parsed, precision)


def _numbers_apart(gold_parsed, pred_parsed, precision: int) -> bool:
    """Veto a "same" from math-verify's rounding when two plain numbers differ relatively.

    math-verify rounds to ``precision`` decimals, so ``1/3^70`` equals ``1/3^71`` (both
    round to 0). Two numbers with no free symbols are compared again here with exact
    rationals when they are rational, else with 50-digit evaluation and the same relative
    rule as the exact path.
    """
    import sympy

    g = next((x for x in gold_parsed if isinstance(x, sympy.Expr)), None)
    p = next((x for x in pred_parsed if isinstance(x, sympy.Expr)), None)
    if g is None or p is None or not g.is_number or not p.is_number:
        return False
    try:
        if g.is_Rational and p.is_Rational and not isinstance(g, sympy.Float) and not isinstance(p, sympy.Float):
            return g != p
        # relative difference with arbitrary-exponent evaluation: 1/2004! and 1/2006! underflow floats
        top = sympy.Max(sympy.Abs(g), sympy.Abs(p))
        if top.evalf(30) == 0:
            return False
        rel = float((sympy.Abs(g - p) / top).evalf(30))
    except Exception:
        return False
    return rel > 5 * 10 ** -(precision - 1)  # the exact path's rule (numbers.close)


