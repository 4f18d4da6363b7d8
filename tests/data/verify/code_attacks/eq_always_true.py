# ruff: noqa  (hostile fixture: written the way an attacker would)
# An object equal to everything.
class Anything(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


def add(a, b):
    return Anything(0)
