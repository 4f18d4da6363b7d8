# ruff: noqa  (hostile fixture: written the way an attacker would)
# Read test files from the working folder (and anywhere nearby) and hard-code the answers.
import os
import re

answers = {}
for folder in (".", os.getcwd(), "/sbx", "/tmp", os.path.expanduser("~")):
    try:
        names = os.listdir(folder)
    except OSError:
        continue
    for name in names:
        try:
            text = open(os.path.join(folder, name)).read()
        except OSError:
            continue
        for a, b, want in re.findall(r"add\((-?\d+),\s*(-?\d+)\)\s*==\s*(-?\d+)", text):
            answers[(int(a), int(b))] = int(want)


def add(a, b):
    return answers.get((a, b), 0)
