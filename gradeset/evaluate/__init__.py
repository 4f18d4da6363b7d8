"""gradeset.evaluate: accuracy, pass@k, maj@k, thinking and answer proportion (seed 004).

Light at import: metrics are pure Python; generation and grading are imported only when
an evaluation needs them.
"""

from gradeset.evaluate.metrics import (
    compute_metrics,
    has_answer,
    has_reasoning,
    maj_at_k,
    parse_ks,
    pass_at_k,
)
from gradeset.evaluate.report import debug_paths, example_rows, metrics_text, new_run_id, table
from gradeset.evaluate.runner import evaluate, evaluate_model, grade, save

__all__ = [
    "compute_metrics", "debug_paths", "evaluate", "evaluate_model", "example_rows", "grade", "has_answer",
    "has_reasoning", "maj_at_k", "metrics_text", "new_run_id", "parse_ks", "pass_at_k", "save", "table",
]
