"""Shaping: graded groups into SFT, DPO, GRPO/GSPO/Dr. GRPO and KTO data; balance, dedup,
decontaminate, split and batch.

Every function here is pure over groups (dicts in, dicts out); the commands in
``gradeset.commands`` add files, counts and reject files around them. Heavy
submodules (dedup's numpy MinHash) are imported on first use.
"""

from gradeset.shape.dpo import build_dpo, iter_dpo, pairs_for_group
from gradeset.shape.grpo import build_grpo, build_kto, iter_grpo, iter_kto
from gradeset.shape.scoring import ShapeError, effective_score, is_correct
from gradeset.shape.sft import build_sft, first_correct, iter_sft

__all__ = [
    "ShapeError", "build_dpo", "build_grpo", "build_kto", "build_sft", "effective_score", "first_correct",
    "is_correct", "iter_dpo", "iter_grpo", "iter_kto", "iter_sft", "pairs_for_group",
]
