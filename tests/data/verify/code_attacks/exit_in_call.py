# ruff: noqa  (hostile fixture: written the way an attacker would)
# Leave with status 0 from inside the call under test.
import os


def add(a, b):
    print("passed")
    os._exit(0)
