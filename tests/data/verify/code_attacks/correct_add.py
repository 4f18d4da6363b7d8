# ruff: noqa  (hostile fixture: written the way an attacker would)
def add(a, b):
    return a + b
