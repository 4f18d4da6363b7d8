# ruff: noqa  (hostile fixture: written the way an attacker would)
# Write harness-like result records to every file descriptor it can, then answer wrong.
import json
import os

for i in range(200):
    for fd in range(0, 64):
        for rec in ({"k": "call", "i": i, "ok": True, "v": ["i", hex(5)]}, {"k": "prog", "i": i, "ok": True},
                    {"k": "load", "ok": True}, {"k": "done"}):
            try:
                os.write(fd, (json.dumps(rec) + "\n").encode())
            except OSError:
                pass
        break


def add(a, b):
    return 0
