"""Train/valid/test splits by prompt: no prompt in two splits, stratified, reproducible.

A prompt's split is decided by a hash of (seed, normalised prompt text), so the same
prompt lands in the same split in every run, file and shard, however the input is
ordered; groups repeating a prompt (other answers, other sources) follow it.

Two modes:

* ``exact`` (default for files): two passes. Pass one collects each prompt key and
  its stratum; within each stratum keys are ordered by hash and cut at the ratios
  (largest remainder), so every stratum is split in the exact proportions.
* ``streaming``: one pass, each key goes where its hash falls in the cumulative
  ratios. Proportions are exact only in expectation, but nothing is held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gradeset.shape.balance import bucket_of
from gradeset.shape.scoring import ShapeError, stable_unit
from gradeset.shape.text import prompt_key_text, text_hash

STRATA = ("task", "difficulty", "category", "source", "bucket")


def parse_ratios(spec: str | dict | None = None, valid: float | None = None, test: float | None = None
                 ) -> dict[str, float]:
    """``train=0.8,valid=0.1,test=0.1`` or valid/test shares (train gets the rest)."""
    if spec:
        if isinstance(spec, dict):
            items = list(spec.items())
        else:
            items = []
            for part in str(spec).split(","):
                if "=" not in part:
                    raise ShapeError(f"bad ratio {part!r}: expected NAME=SHARE, e.g. train=0.9")
                k, _, v = part.partition("=")
                items.append((k.strip(), v.strip()))
        try:
            ratios = {str(k): float(v) for k, v in items}
        except ValueError:
            raise ShapeError(f"bad ratios {spec!r}: shares must be numbers") from None
    else:
        v = 0.05 if valid is None else valid
        t = 0.05 if test is None else test
        ratios = {"train": round(1.0 - v - t, 12), "valid": v, "test": t}
    if any(r < 0 for r in ratios.values()):
        raise ShapeError(f"split shares must be >= 0, got {ratios}")
    total = sum(ratios.values())
    if total <= 0 or abs(total - 1.0) > 1e-6:
        raise ShapeError(f"split shares must add up to 1, got {total:g} ({ratios})")
    return ratios


def split_key(group: dict, key: str = "prompt") -> str:
    """The identity a split keeps together: the normalised prompt (default) or the group id."""
    if key == "id":
        return str(group.get("id"))
    if key not in ("prompt", "prompt+answer"):
        raise ShapeError(f"split key must be prompt, prompt+answer or id, got {key!r}")
    return text_hash(prompt_key_text(group, key)).hex()


def stratum_of(group: dict, by: str | None) -> str:
    if not by:
        return ""
    if by == "bucket":
        return bucket_of(group)
    if by not in STRATA:
        raise ShapeError(f"cannot stratify by {by!r}; choose one of {', '.join(STRATA)}")
    v = group.get(by)
    return "" if v is None else str(v)


def streaming_assign(key: str, ratios: dict[str, float], seed: int = 0) -> str:
    u = stable_unit(seed, key)
    acc = 0.0
    names = list(ratios)
    for name in names:
        acc += ratios[name]
        if u < acc:
            return name
    return names[-1]


def _cut(n: int, ratios: dict[str, float]) -> list[int]:
    raw = [n * r for r in ratios.values()]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: -(raw[i] - counts[i]))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


class ExactPlan:
    """Pass one of the exact mode: key -> split, cut per stratum."""

    def __init__(self, ratios: dict[str, float], seed: int = 0, stratify: str | None = None, key: str = "prompt"):
        self.ratios, self.seed, self.stratify, self.key = ratios, seed, stratify, key
        self._strata: dict[str, str] = {}
        self.assignment: dict[str, str] = {}

    def observe(self, group: dict) -> None:
        k = split_key(group, self.key)
        if k not in self._strata:
            self._strata[k] = stratum_of(group, self.stratify)

    def finish(self) -> dict[str, str]:
        by_stratum: dict[str, list[str]] = {}
        for k, s in self._strata.items():
            by_stratum.setdefault(s, []).append(k)
        names = list(self.ratios)
        for keys in by_stratum.values():
            keys.sort(key=lambda k: (stable_unit(self.seed, k), k))
            start = 0
            for name, count in zip(names, _cut(len(keys), self.ratios), strict=True):
                for k in keys[start:start + count]:
                    self.assignment[k] = name
                start += count
        self._strata = {}
        return self.assignment

    def assign(self, group: dict) -> str:
        return self.assignment[split_key(group, self.key)]


def split_groups(groups: Iterable[dict], ratios: dict[str, float] | None = None, *, seed: int = 0,
                 stratify: str | None = None, key: str = "prompt", streaming: bool = False
                 ) -> dict[str, list[dict]]:
    """Split a list of groups in memory (the command streams the file twice instead)."""
    ratios = ratios or parse_ratios()
    groups = list(groups)
    assign: Callable[[dict], str]
    if streaming:
        def assign(g: dict) -> str:
            return streaming_assign(split_key(g, key), ratios, seed)
    else:
        plan = ExactPlan(ratios, seed, stratify, key)
        for g in groups:
            plan.observe(g)
        plan.finish()
        assign = plan.assign
    out: dict[str, list[dict]] = {name: [] for name in ratios}
    for g in groups:
        out[assign(g)].append(g)
    return out


def split_table(counts: dict[tuple[str, str], int], names: list[str]) -> str:
    strata = sorted({s for s, _ in counts})
    head = ["stratum"] + names + ["total"]
    lines = [head]
    for s in strata:
        row = [counts.get((s, n), 0) for n in names]
        lines.append([s or "(all)"] + [str(x) for x in row] + [str(sum(row))])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))) for r in lines)


__all__: list[Any] = ["ExactPlan", "parse_ratios", "split_groups", "split_key", "split_table", "streaming_assign"]
