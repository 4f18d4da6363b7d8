"""Runners: YAML pipelines executed in-process (streaming, resumable) or on a Ray cluster.

``run_pipeline(path, runner="local"|"ray")`` runs a pipeline file and returns its summary;
``prepare(path)`` validates it and builds its steps without running anything. See
docs/pipelines.md.
"""

from gradeset.run.local import format_summary, prepare, run_pipeline
from gradeset.run.pipeline import Pipeline, PipelineError, load_pipeline

__all__ = ["Pipeline", "PipelineError", "format_summary", "load_pipeline", "prepare", "run_pipeline"]
