"""Thresholds and switches of ``gradeset check``, one typed object shared by CLI, library and step.

Defaults follow the seeds: coverage >= 80% (seed 001), at most half the groups without a
GRPO learning signal, no invalid rows, no empty texts, no test overlap, no split leakage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Layout names whose groups are preference pairs (responses == [chosen, rejected]) or
# KTO rows (one labelled completion per row): several rows per prompt are by design there.
PAIR_LAYOUTS = frozenset({"trl-dpo", "seed002", "dpo", "preference", "pairs", "seed000-pairs"})
KTO_LAYOUTS = frozenset({"trl-kto", "kto"})
# Trainer layouts that have no place for a score: an export in them is graded upstream (or not
# at all, for SFT), so "0% of responses scored" says nothing about the file.
SCORELESS_LAYOUTS = frozenset({"trl-sft", "sharegpt", "alpaca", "trl-prompt", "verl", "gsm8k", "openrlhf"})


@dataclass
class CheckConfig:
    group_size: int | None = None          # every group must have exactly N responses
    min_coverage: float = 0.8              # share of responses with a score
    max_zero_variance: float = 0.5         # share of groups whose scores are all equal
    max_invalid: int = 0                   # rows that fail layout validation
    max_tied: float = 0.0                  # share of pairs with chosen == rejected or equal scores
    max_empty: int = 0                     # empty / whitespace prompts or responses
    max_duplicates: float = 0.0            # share of groups repeating an earlier prompt (exact, normalised)
    near_duplicate_threshold: float = 0.8  # estimated Jaccard of word 3-gram shingles
    max_near_duplicates: float = 0.05      # share of distinct prompts that nearly repeat an earlier one
    ngram: int = 8                         # n of the word n-grams compared with --test
    max_test_overlap: int = 0              # groups whose prompt overlaps the test set
    max_truncated: float = 0.05            # share of responses cut at max tokens (finish_reason length)
    iqr_factor: float = 3.0                # outlier when length > Q3 + factor * IQR
    max_length: int | None = None          # hard cap on response length (tokens or words); fails above
    label_band: tuple[float, float] = (0.25, 0.75)  # KTO: allowed share of desirable completions
    mode: str | None = None                # "groups", "pairs" or "kto"; None = from the layout
    disable: list[str] = field(default_factory=list)
    examples: int = 20                     # failing rows listed per check
    sample: int = 60                       # groups kept for the report's browsable sample
    num_perm: int = 64                     # MinHash permutations
    seed: int = 0

    def enabled(self, name: str) -> bool:
        return name not in self.disable

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label_band"] = list(self.label_band)
        return d

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> CheckConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(params) - known)
        if unknown:
            from gradeset.errors import GradesetError

            raise GradesetError(f"unknown check options {unknown}; known: {sorted(known)}")
        p = dict(params)
        if "label_band" in p:
            p["label_band"] = tuple(p["label_band"])
        return cls(**p)


def mode_for_layout(layout: str | None) -> str:
    if layout in PAIR_LAYOUTS:
        return "pairs"
    if layout in KTO_LAYOUTS:
        return "kto"
    return "groups"
