# ruff: noqa  (hostile fixture: written the way an attacker would)
# Kill the parent (the harness), then write forged records where the harness used to write.
import json
import os
import signal

for pid in (os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
for fd in range(1, 64):
    try:
        os.write(fd, (json.dumps({"k": "call", "i": 0, "ok": True, "v": ["i", hex(5)]}) + "\n").encode())
    except OSError:
        pass


def add(a, b):
    return 0
