"""The pool change ``gradeset serve`` relies on: a lone stuck completion costs one time limit, not two."""

from __future__ import annotations

import sys
from pathlib import Path

from gradeset.verify import get_verifier
from gradeset.verify.pool import VerifyPool

sys.path.insert(0, str(Path(__file__).parent / "data" / "serve"))  # hang_plugin, imported by the workers too
HOSTILE = r"HANG \boxed{1}"  # the math verifier has no input that computes forever any more


def test_a_lone_stuck_item_is_the_timeout_without_a_solo_retry(monkeypatch):
    spawned = []
    original = VerifyPool._spawn

    def counting(self):
        w = original(self)
        spawned.append(w)
        return w

    monkeypatch.setattr(VerifyPool, "_spawn", counting)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "data" / "serve"))
    with VerifyPool({"math": get_verifier("python:hang_plugin:grade")}, workers=1, timeout=2) as pool:
        verdicts = pool.map([("math", HOSTILE, "1")])
        assert verdicts[0].detail == "timeout" and verdicts[0].score == 0.0
        assert pool.timeouts == 1
        # the first worker, and one replacement after the kill: the item was not re-run alone
        assert len(spawned) == 2
        # a chunk with other items still finds the culprit and grades the rest
        verdicts = pool.map([("math", "\\boxed{1}", "1"), ("math", HOSTILE, "1"), ("math", "\\boxed{2}", "2")])
        assert [v.correct for v in verdicts] == [True, False, True]
        assert verdicts[1].detail == "timeout"
