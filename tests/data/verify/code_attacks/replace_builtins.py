# ruff: noqa  (hostile fixture: written the way an attacker would)
# Replace exec/compile/eval so that the tests never run (and "succeed").
import builtins

builtins.exec = lambda *a, **k: None
builtins.compile = lambda *a, **k: None
builtins.eval = lambda *a, **k: True
__builtins__ = {"exec": builtins.exec} if isinstance(__builtins__, dict) else __builtins__


def add(a, b):
    return 0
