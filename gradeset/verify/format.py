"""Format verifiers: does the completion follow the required structure?

Styles: seed 004's ``<start_working_out>…<end_working_out><SOLUTION>…</SOLUTION>``,
R1's ``<think>…</think><answer>…</answer>``, or a user regex. Score is partial credit
(share of the structure's tags present exactly once, in order); ``correct`` means the
whole structure matched. With ``check_answer=True`` the solution must also be right
(math verifier), and the score is the mean of format and answer.
"""

from __future__ import annotations

import re
from typing import Any

from gradeset.verify.verdict import Verdict

STYLES = {
    "working_out": ("<start_working_out>", "<end_working_out>", "<SOLUTION>", "</SOLUTION>"),
    "think": ("<think>", "</think>", "<answer>", "</answer>"),
}


class FormatVerifier:
    name = "format"

    def __init__(self, style: str = "working_out", tags: list[str] | tuple[str, ...] | None = None,
                 check_answer: bool = False, strict_start: bool = False):
        if tags is None:
            if style not in STYLES:
                raise ValueError(f"style must be one of {sorted(STYLES)} or give tags=[4 tags]")
            tags = STYLES[style]
        if len(tags) != 4:
            raise ValueError("tags: reasoning start, reasoning end, solution start, solution end")
        self.tags = tuple(tags)
        self.check_answer = check_answer
        self.strict_start = strict_start
        rs, re_, ss, se = (re.escape(t) for t in self.tags)
        start = r"^\s*" if strict_start else r"^[\s\S]*?"
        self._full = re.compile(start + rs + r"[\s\S]+?" + re_ + r"\s*" + ss + r"([\s\S]+?)" + se + r"\s*$")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_full"}

    def __setstate__(self, state):
        self.__init__(tags=state["tags"], check_answer=state["check_answer"], strict_start=state["strict_start"])

    def __call__(self, completion: str, gold: Any = None) -> Verdict:
        text = completion or ""
        counts = [text.count(t) for t in self.tags]
        positions = [text.find(t) for t in self.tags]
        in_order = all(p >= 0 for p in positions) and positions == sorted(positions)
        partial = sum(c == 1 for c in counts) / 4.0
        # the regex only runs on texts with each tag once: no backtracking blow-up on hostile repeats
        m = self._full.match(text) if all(c == 1 for c in counts) else None
        parsed = m.group(1).strip() if m else None
        ok = bool(m) and all(c == 1 for c in counts) and in_order
        score = 1.0 if ok else partial * 0.75  # structure never fully right: at most 0.75
        detail = None if ok else f"tags present once: {sum(c == 1 for c in counts)}/4"
        if parsed is None and positions[2] >= 0:
            tail = text[positions[2] + len(self.tags[2]):]
            end = tail.find(self.tags[3])
            parsed = (tail[:end] if end >= 0 else None) or None
        if self.check_answer and gold is not None:
            from gradeset.verify.maths import MathVerifier

            right = parsed is not None and MathVerifier(whole_text=False).compare(parsed.strip(), gold).correct
            return Verdict((score + (1.0 if right else 0.0)) / 2, ok and right, parsed, detail)
        return Verdict(score, ok, parsed, detail)


class RegexVerifier:
    """``regex`` with one group: parsed = the last match's group; correct when it equals the gold
    (normalised text) or, without a gold, when the pattern matches at all."""

    name = "regex"

    def __init__(self, pattern: str, flags: str = "s"):
        self.pattern = pattern
        self.flags = flags
        re.compile(pattern)

    def __call__(self, completion: str, gold: Any = None) -> Verdict:
        fl = 0
        for ch in self.flags:
            fl |= {"s": re.S, "i": re.I, "m": re.M}.get(ch, 0)
        found = None
        for found in re.finditer(self.pattern, completion or "", fl):  # noqa: B007
            pass
        if found is None:
            return Verdict(0.0, False, None, "pattern not found")
        parsed = (found.group(1) if found.groups() else found.group(0)).strip()
        if gold is None:
            return Verdict(1.0, True, parsed)
        ok = " ".join(parsed.lower().split()) == " ".join(str(gold).lower().split())
        if not ok:
            from gradeset.verify.maths import MathVerifier

            ok = MathVerifier(whole_text=False, symbolic=False).compare(parsed, gold).correct
        return Verdict(1.0 if ok else 0.0, ok, parsed)
