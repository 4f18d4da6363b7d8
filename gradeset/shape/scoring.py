"""How shaping reads grades: one effective score and one correctness flag per response.

Verifiers fill ``score`` (0..1) and ``correct``; hand-made or imported data often has
only one of the two (seed 000 has scores, seed 003 has 0/1 labels). Every strategy
reads grades through these helpers so the fallbacks are the same everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from gradeset.errors import GradesetError
from gradeset.records import response_text


class ShapeError(GradesetError):
    """Bad parameters or data that no strategy can use (exit 2)."""


def effective_score(resp: Mapping[str, Any]) -> float | None:
    """``score`` when present, else 1.0 / 0.0 from ``correct``, else None (ungraded)."""
    s = resp.get("score")
    if s is not None and not isinstance(s, bool):
        try:
            return float(s)
        except (TypeError, ValueError):
            return None
    c = resp.get("correct")
    if isinstance(c, bool):
        return 1.0 if c else 0.0
    return None


def is_correct(resp: Mapping[str, Any], threshold: float = 1.0) -> bool | None:
    """``correct`` when present, else ``score >= threshold``, else None (ungraded)."""
    c = resp.get("correct")
    if isinstance(c, bool):
        return c
    s = resp.get("score")
    if s is not None and not isinstance(s, bool):
        try:
            return float(s) >= threshold
        except (TypeError, ValueError):
            return None
    return None


def sample_order(group: Mapping[str, Any]) -> list[int]:
    """Response indices in sampling order (``meta.sample_index`` when present).

    "First correct" must mean first *sampled*, which is not the list order after a
    resumed or concurrent generation run appended responses out of order.
    """
    responses = group.get("responses") or []

    def key(i: int) -> tuple[int, int]:
        meta = responses[i].get("meta") if isinstance(responses[i], dict) else None
        si = meta.get("sample_index") if isinstance(meta, dict) else None
        return (si if isinstance(si, int) and not isinstance(si, bool) else 1 << 62, i)

    return sorted(range(len(responses)), key=key)


def text_of(resp: Any) -> str:
    return response_text(resp)


def stable_unit(seed: int | str, key: str) -> float:
    """A number in [0, 1) that depends only on (seed, key): order-free, reproducible sampling."""
    h = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def stable_rng_seed(seed: int | str, key: str) -> int:
    h = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big")


def bump(stats: dict, key: str, n: int = 1) -> None:
    stats[key] = stats.get(key, 0) + n


def skip(stats: dict, group: dict, reason: str, on_skip=None) -> None:
    """Count a group a builder leaves out (``skipped_<reason>``) and tell the caller, which
    writes it to the reject file or counts it for the summary."""
    bump(stats, f"skipped_{reason}")
    if on_skip is not None:
        on_skip(group, reason)
