"""TriviaQA grading: exact match and token F1 over aliases, normalised as the official evaluator.

``match="contains"`` (the default) also accepts a short answer that names an alias as a whole
phrase ("The largest planet is Jupiter."), which is the verdict a careful grader gives;
``match="exact"`` is the official rule, for accuracies comparable with published numbers.

The normalisation (lowercase, underscores to spaces, punctuation to spaces, articles
removed, whitespace collapsed) follows ``triviaqa_evaluation.py`` so that accuracies
are comparable with published numbers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

from gradeset.verify import extract
from gradeset.verify.verdict import Verdict, unparsed

_PUNCT = set(string.punctuation + "‘’´`")


def normalize_answer(s: str) -> str:
    s = s.replace("_", " ").lower()
    s = "".join(" " if ch in _PUNCT else ch for ch in s)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split()).strip()


def f1(prediction: str, truth: str) -> float:
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(p) & Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def aliases(gold: Any) -> list[str]:
    if gold is None:
        return []
    if isinstance(gold, str):
        return [gold]
    if isinstance(gold, dict):
        out: list[str] = []
        for key in ("aliases", "normalized_aliases", "value", "normalized_value", "answer"):
            v = gold.get(key)
            out.extend(aliases(v))
        return out
    if isinstance(gold, list | tuple):
        return [str(a) for a in gold if a is not None]
    return [str(gold)]


_NEGATION = {"not", "no", "never", "nor", "isn't", "wasn't", "neither"}


def contains_alias(answer: str, golds: list[str], max_words: int = 25) -> str | None:
    """The alias a short final sentence names as a whole phrase ("The largest planet is Jupiter."),
    or None. Whole phrases only (``Saturnalia`` does not name ``Saturn``); an alias right after a
    negation ("Canberra, not Sydney") does not count; hedges ("Paris or Lyon") and long answers
    never match (a list of guesses would contain everything)."""
    words = normalize_answer(answer).split()
    if not words or len(words) > max_words:
        return None
    if "or" in words or "either" in words:
        return None  # "it might be Paris or Lyon": a hedge names every alias it lists
    for g in golds:
        alias = normalize_answer(g).split()
        if not alias:
            continue
        k = len(alias)
        for i in range(len(words) - k + 1):
            if words[i:i + k] == alias:
                if any(w in _NEGATION for w in words[max(0, i - 2):i]):
                    continue  # "not Sydney", "never the Thames"
                return g
    return None


class TriviaVerifier:
    name = "trivia"

    def __init__(self, score: str = "em", max_answer_chars: int = 200, truncation_chars: int = 400,
                 match: str = "contains", contains_max_words: int = 25):
        if score not in ("em", "f1"):
            raise ValueError("score must be 'em' or 'f1'")
        if match not in ("exact", "contains"):
            raise ValueError("match must be 'exact' (the official TriviaQA rule) or 'contains'")
        self.score = score
        self.match = match
        self.contains_max_words = int(contains_max_words)
        self.max_answer_chars = max_answer_chars
        self.truncation_chars = truncation_chars

    def extract(self, completion: str) -> tuple[str | None, str]:
        text = extract.after_thinking(extract.strip_turn_tail(completion or "")).strip()
        ans, _ = extract.extract_final(text, ("answer",))
        if ans is not None:
            ans = re.sub(r"\\text\{([^{}]*)\}", r"\1", ans)
            return ans, ""
        if not text:
            return None, "empty"
        if len(text) <= self.max_answer_chars:
            return text, ""
        if extract.looks_truncated(text, self.truncation_chars):
            return None, "truncated: no final answer"
        return None, "no final answer (long completion without a marker)"

    def __call__(self, completion: str, gold: Any) -> Verdict:
        ans, why = self.extract(completion)
        if ans is None:
            return unparsed(why)
        if len(ans) > 4 * self.max_answer_chars + 1000:
            return unparsed(f"answer too long to be an answer ({len(ans)} characters)")
        golds = aliases(gold)
        if not golds:
            return Verdict(0.0, False, ans, "no gold aliases")
        norm = normalize_answer(ans)
        em = any(norm == normalize_answer(g) for g in golds)
        if not em and self.match == "contains":
            hit = contains_alias(ans, golds, self.contains_max_words)
            if hit is not None:
                return Verdict(1.0, True, ans, f"contains alias {hit!r}")
        best_f1 = max(f1(ans, g) for g in golds)
        score = 1.0 if em else (best_f1 if self.score == "f1" else 0.0)
        return Verdict(score, em, ans, None if em else f"f1={best_f1:.2f}")
