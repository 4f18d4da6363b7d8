# ruff: noqa  (hostile fixture: written the way an attacker would)
# Claim success and leave before any test runs.
import os
import sys

print("passed")
print("ok")
sys.stdout.flush()
os._exit(0)


def add(a, b):
    return 0
