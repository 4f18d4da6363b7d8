"""Unicode math in answers (``−2/5``, ``3√5``, ``x² + 3x − 4``, ``16π``, ``¾``) as the LaTeX the comparer reads.

Chat models write typeset symbols instead of LaTeX. Dropping an unknown symbol would
change the value (``3√5`` read as 3, ``−2/5`` as 2/5), so every symbol that carries
meaning is translated, and the translation is one left-to-right pass (linear time).
"""

from __future__ import annotations

_MINUS = "\u2212\u2012\u2013\ufe63\uff0d"  # minus sign, figure dash, en dash, small and fullwidth hyphen-minus
_SUPER = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9",
          "⁺": "+", "⁻": "-", "ⁿ": "n", "ˣ": "x"}
_SUB = {"₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7", "₈": "8", "₉": "9"}
_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5),
           "⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅐": (1, 7), "⅛": (1, 8), "⅜": (3, 8),
           "⅝": (5, 8), "⅞": (7, 8), "⅑": (1, 9), "⅒": (1, 10)}
_SYMBOL = {"×": "\\times ", "⋅": "\\cdot ", "·": "\\cdot ", "∙": "\\cdot ", "÷": "\\div ", "π": "\\pi ",
           "∞": "\\infty ", "≤": "\\le ", "⩽": "\\le ", "≥": "\\ge ", "⩾": "\\ge ", "≠": "\\ne ", "±": "\\pm ",
           "°": "^\\circ ", "∪": "\\cup ", "∩": "\\cap ", "∈": "\\in ", "θ": "\\theta ", "α": "\\alpha ",
           "β": "\\beta ", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2032": "'"}
_ROOTS = {"√": "", "∛": "[3]", "∜": "[4]"}


def has_unicode_math(s: str) -> bool:
    return not s.isascii()


def to_latex(s: str) -> str:
    """Translate Unicode math symbols; ASCII text comes back unchanged."""
    if not has_unicode_math(s):
        return s
    out: list[str] = []
    brackets: list[bool] = []  # per open bracket: True when it is a root's radicand (closes with "}")
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _MINUS:
            out.append("-")
        elif c in _SUPER or c in _SUB:
            table, mark = (_SUPER, "^") if c in _SUPER else (_SUB, "_")
            j = i
            while j < n and s[j] in table:
                j += 1
            out.append(mark + "{" + "".join(table[ch] for ch in s[i:j]) + "}")
            i = j
            continue
        elif c in _VULGAR:
            num, den = _VULGAR[c]
            if out and out[-1][-1:].isdigit():
                out.append(" ")  # 2½ is the mixed number 2 1/2
            out.append(f"\\frac{{{num}}}{{{den}}}")
        elif c in _ROOTS:
            i = _root(s, i + 1, _ROOTS[c], out, brackets)
            continue
        elif c in "([{":
            brackets.append(False)
            out.append(c)
        elif c in ")]}":
            out.append("}" if brackets and brackets.pop() else c)
        elif c in _SYMBOL:
            out.append(_SYMBOL[c])
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _root(s: str, i: int, index: str, out: list[str], brackets: list[bool]) -> int:
    """``√5``, ``√(x+1)``, ``√x``: the radicand is the next number, letter or bracketed group."""
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    if i < n and s[i] in "([{":
        brackets.append(True)
        out.append(f"\\sqrt{index}{{")
        return i + 1
    j = i
    while j < n and (s[j].isdigit() or s[j] == "."):
        j += 1
    if j == i and i < n and s[i].isalpha():
        j = i + 1
    if j == i:
        out.append(f"\\sqrt{index}")
        return i
    out.append(f"\\sqrt{index}{{{s[i:j]}}}")
    return j
