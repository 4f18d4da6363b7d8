"""Verifiers: grade completions correctly, fast and safely.

``get_verifier(task, **opts)`` returns a picklable ``(completion, gold) -> Verdict``;
``verify_groups(groups, task=..., workers=..., timeout=...)`` grades whole groups with
worker processes that are killed at the time limit.
"""

from gradeset.verify.groups import Grader, verify_groups
from gradeset.verify.registry import VERIFIERS, get_verifier, register_verifier
from gradeset.verify.verdict import Verdict

__all__ = ["VERIFIERS", "Grader", "Verdict", "get_verifier", "register_verifier", "verify_groups"]
