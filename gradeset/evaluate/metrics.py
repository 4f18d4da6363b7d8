"""Evaluation metrics over graded groups: accuracy, pass@k, maj@k, thinking and answer share.

Everything here is pure arithmetic over group dicts (no I/O, no models), so the same
functions score a file on disk, a run inside ``gradeset train``, or a list in a notebook.

Conventions (written down because evaluation tools disagree on them):

- **accuracy** is the mean correctness over every graded response (micro average);
  **first_sample_accuracy** scores only each group's first response (seed 004's greedy
  number when n = 1).
- **pass@k** is the unbiased estimator of Chen et al. (2021),
  ``1 - C(n-c, k) / C(n, k)`` averaged over groups, computed exactly in integers with one
  rounding (no overflow, no cancellation). Groups with fewer than k graded responses
  are left out of pass@k (and counted in ``groups_for_k``), never padded.
- **maj@k** votes over the parsed answers of a group's first k graded responses.
  Responses without a parsed answer abstain. A tie between answers scores the expected
  value of breaking it uniformly at random (the share of tied answers that are correct),
  so the number does not depend on response order. No vote at all scores 0.
- **thinking_proportion**: share of responses with reasoning (a non-empty ``reasoning``
  field, ``<think>…</think>`` or ``<start_working_out>…<end_working_out>`` text, or text
  before a lone ``</think>`` when the chat template opened the block in the prompt).
- **answer_proportion**: share of graded responses with an extractable final answer
  (``parsed`` not null).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_KS = (1,)
BREAKDOWN_FIELDS = ("task", "category", "difficulty")

_THINK_BLOCKS = (
    re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE),
    re.compile(r"<start_working_out>(.*?)(?:<end_working_out>|$)", re.DOTALL | re.IGNORECASE),
    re.compile(r"<reasoning>(.*?)(?:</reasoning>|$)", re.DOTALL | re.IGNORECASE),
)
_LONE_CLOSE = re.compile(r"^(.*?)</think>", re.DOTALL | re.IGNORECASE)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one group with n samples of which c are correct (needs n >= k).

    ``1 - C(n-c, k) / C(n, k)`` is computed as ``(C(n, k) - C(n-c, k)) / C(n, k)`` in exact
    integers with one correctly rounded division: no overflow (Python integers), and no
    cancellation when pass@k is tiny (the float form ``1 - ratio`` loses digits there).
    Measured faster than the float product form for the n a group has (benchmarks/eval_bench.py).
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if n < k:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    total = math.comb(n, k)
    return (total - math.comb(n - c, k)) / total


def vote_key(parsed: Any) -> str | None:
    """The key answers are counted under in a majority vote: "5", "5.0" and " 5 " agree."""
    if parsed is None:
        return None
    return _vote_key(parsed if isinstance(parsed, str) else str(parsed))


@functools.lru_cache(maxsize=1 << 16)
def _vote_key(parsed: str) -> str | None:
    """The key answers are counted under in a majority vote: "5", "5.0" and " 5 " agree.

    Uses the verifier's canonical form where it can decide, else a light textual
    normalisation (case, spaces, ``$``, thousands commas, numeric form). Cached: a run's
    answers repeat a lot, and the canonical form costs a parse.
    """
    text = parsed.strip()
    if not text:
        return None
    try:  # the verifier's canonical form, when its module is present
        from gradeset.verify.normalize import canonical

        form = canonical(text)
        if form is not None:
            return repr(form)
    except Exception:  # noqa: BLE001 - any failure falls back to the textual key
        pass
    t = text.lower().replace("$", "").replace(" ", "").rstrip(".")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    if len(t) <= 64 and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", t):
        num = float(t)
        t = repr(int(num)) if num.is_integer() and abs(num) < 1e15 else repr(num)
    return t


def maj_at_k(responses: Sequence[Mapping[str, Any]], k: int) -> float | None:
    """Majority-vote correctness over the first k graded responses (ties: expected value).

    None when none of them has a parsed answer to vote with."""
    graded = [r for r in responses if r.get("correct") is not None][:k]
    return _majority([(vote_key(r.get("parsed")), bool(r.get("correct"))) for r in graded])


def _majority(votes_in: Sequence[tuple[str | None, bool]]) -> float | None:
    votes: Counter[str] = Counter()
    right: dict[str, list[bool]] = {}
    for key, ok in votes_in:
        if key is None:
            continue  # no parsed answer: abstains
        votes[key] += 1
        right.setdefault(key, []).append(ok)
    if not votes:
        return None  # nobody voted (no parsed answers): maj@k says nothing, it is not 0
    top = max(votes.values())
    tied = [key for key, v in votes.items() if v == top]
    # an answer is correct when most responses giving it were graded correct
    correct = [key for key in tied if sum(right[key]) * 2 > len(right[key])]
    return len(correct) / len(tied)


def has_reasoning(response: Mapping[str, Any] | str) -> bool:
    """Seed 004's "response contains reasoning": a reasoning field or a thinking block with text."""
    if isinstance(response, Mapping):
        reasoning = response.get("reasoning")
        if isinstance(reasoning, str) and reasoning.strip():
            return True
        from gradeset.records import response_text

        text = response_text(response)
    else:
        text = response or ""
    low = text.lower()
    if "think>" not in low and "working_out>" not in low and "reasoning>" not in low:
        return False
    for rx in _THINK_BLOCKS:
        for m in rx.finditer(text):
            if m.group(1).strip():
                return True
    m = _LONE_CLOSE.match(text)
    return bool(m and m.group(1).strip() and "<think>" not in m.group(1).lower())


def has_answer(response: Mapping[str, Any]) -> bool:
    """Seed 004's "extractable final answer": the verifier parsed one."""
    parsed = response.get("parsed")
    return parsed is not None and str(parsed).strip() != ""


def _graded(group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in group.get("responses") or [] if r.get("correct") is not None]


class _Acc:
    """Running sums for one slice of the data (all groups, or one task / category)."""

    def __init__(self, ks: Sequence[int]):
        self.ks = list(ks)
        self.n_groups = 0
        self.n_responses = 0
        self.n_graded = 0
        self.correct = 0
        self.score_sum = 0.0
        self.n_scored = 0
        self.first_n = 0
        self.first_correct = 0
        self.thinking = 0
        self.answered = 0
        self.pass_sum = {k: 0.0 for k in self.ks}
        self.pass_n = {k: 0 for k in self.ks}
        self.maj_sum = {k: 0.0 for k in self.ks}
        self.maj_n = {k: 0 for k in self.ks}
        self.maj_voted = {k: 0 for k in self.ks}  # groups where at least one response had a parsed answer

    def add(self, f: dict[str, Any]) -> None:
        """Add one group's facts (from :func:`group_facts`), shared by every slice it is in."""
        self.n_groups += 1
        self.n_responses += f["n_responses"]
        self.n_graded += f["n_graded"]
        self.correct += f["n_correct"]
        self.score_sum += f["score_sum"]
        self.n_scored += f["n_scored"]
        self.thinking += f["thinking"]
        self.answered += f["answered"]
        if f["first"] is not None:
            self.first_n += 1
            self.first_correct += f["first"]
        for k, (p, m) in f["at_k"].items():
            self.pass_sum[k] += p
            self.pass_n[k] += 1
            self.maj_n[k] += 1
            if m is not None:  # a group that could not vote counts as not right, once anyone could vote
                self.maj_sum[k] += m
                self.maj_voted[k] += 1

    def result(self) -> dict[str, Any]:
        def ratio(a: float, b: int) -> float | None:
            return a / b if b else None

        out: dict[str, Any] = {
            "accuracy": ratio(self.correct, self.n_graded),
            "first_sample_accuracy": ratio(self.first_correct, self.first_n),
        }
        for k in self.ks:
            out[f"pass@{k}"] = ratio(self.pass_sum[k], self.pass_n[k])
        for k in self.ks:  # absent (None) when no response had a parsed answer: not a 0.0 score
            out[f"maj@{k}"] = ratio(self.maj_sum[k], self.maj_n[k]) if self.maj_voted[k] else None
        out.update({
            "thinking_proportion": ratio(self.thinking, self.n_responses),
            "answer_proportion": ratio(self.answered, self.n_graded),
            "mean_score": ratio(self.score_sum, self.n_scored),
            "n_groups": self.n_groups,
            "n_responses": self.n_responses,
            "n_graded": self.n_graded,
            "n_correct": self.correct,
            "groups_for_k": {str(k): self.pass_n[k] for k in self.ks},
        })
        return out


def group_facts(group: Mapping[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """Everything the metrics need from one group, computed once however many slices use it."""
    responses = group.get("responses") or []
    graded = _graded(group)
    n = len(graded)
    c = sum(1 for r in graded if r.get("correct"))
    score_sum, n_scored = 0.0, 0
    for r in responses:
        s = r.get("score")
        if isinstance(s, int | float) and not isinstance(s, bool) and not math.isnan(s):
            score_sum += float(s)
            n_scored += 1
    votes = [(vote_key(r.get("parsed")), bool(r.get("correct"))) for r in graded]  # keyed once, all k
    return {
        "n_responses": len(responses), "n_graded": n, "n_correct": c, "score_sum": score_sum,
        "n_scored": n_scored, "thinking": sum(1 for r in responses if has_reasoning(r)),
        "answered": sum(1 for r in graded if has_answer(r)),
        "first": (1 if graded[0].get("correct") else 0) if graded else None,
        "at_k": {k: (pass_at_k(n, c, k), _majority(votes[:k])) for k in ks if n >= k},
    }


def default_ks(groups: Iterable[Mapping[str, Any]]) -> list[int]:
    """1, the group size, and the powers of two between: pass@1 alone hides what sampling buys.

    The group size is the largest number of graded responses a group has."""
    size = max((len(_graded(g)) for g in groups), default=1) or 1
    ks, k = [1], 2
    while k < size:
        ks.append(k)
        k *= 2
    return sorted(set(ks + [size]))


def parse_ks(text: str | Sequence[int] | None) -> list[int]:
    """"1,4,16" -> [1, 4, 16] (sorted, unique, positive)."""
    if text is None:
        return list(DEFAULT_KS)
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            ks = [int(p) for p in parts]
        except ValueError as exc:
            raise ValueError(f"--k expects comma-separated positive integers, got {text!r}") from exc
    else:
        ks = [int(k) for k in text]
    if not ks or any(k <= 0 for k in ks):
        raise ValueError(f"--k expects comma-separated positive integers, got {text!r}")
    return sorted(set(ks))


def compute_metrics(groups: Iterable[Mapping[str, Any]], ks: Sequence[int] = DEFAULT_KS,
                    breakdown: Sequence[str] = BREAKDOWN_FIELDS) -> dict[str, Any]:
    """Overall metrics plus ``by_<field>`` slices for each breakdown field present in the data.

    A slice appears only for fields that at least one group sets; groups without the
    field are counted under ``"(none)"`` so slice counts add up to the total.
    """
    ks = parse_ks(ks)
    total = _Acc(ks)
    slices: dict[str, dict[str, _Acc]] = {f: {} for f in breakdown}
    seen = {f: False for f in breakdown}
    for g in groups:
        facts = group_facts(g, ks)
        total.add(facts)
        for f in breakdown:
            value = g.get(f)
            if value is not None and value != "":
                seen[f] = True
            key = "(none)" if value is None or value == "" else str(value)
            slices[f].setdefault(key, _Acc(ks)).add(facts)
    out = total.result()
    for f in breakdown:
        if seen[f]:
            out[f"by_{f}"] = {key: acc.result() for key, acc in sorted(slices[f].items())}
    return out
