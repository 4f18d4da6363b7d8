"""A test verifier that never returns for completions containing HANG, and grades the rest as math.

The math verifier itself no longer has an input that computes forever (power towers and deep
nesting are refused by bounds), so the tests of the kill path need a verifier that does.
Started by the user as ``--task python:hang_plugin:grade``.
"""

from gradeset.verify import get_verifier

_math = get_verifier("math")


def grade(completion, gold):
    while "HANG" in completion:
        pass
    return _math(completion, gold)
