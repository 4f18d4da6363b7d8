"""A pipeline file made ready to run: validated, steps built, paths resolved, split in runs.

Everything that can be wrong with a pipeline is found here, before the first chunk, so
no error appears mid-run after an hour of generation.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gradeset.errors import GradesetError
from gradeset.run.pipeline import (
    Pipeline,
    PipelineError,
    StepSpec,
    input_paths,
    load_pipeline,
    resolve_params,
    resolve_path,
)
from gradeset.run.source import Source, open_source


def is_stream_step(step: Any) -> bool:
    return callable(getattr(step, "process", None))


@dataclass
class Plan:
    """A validated pipeline with its steps built and its paths resolved."""

    pipeline: Pipeline
    base: Path
    raw: dict
    path: str
    specs: list[StepSpec]
    steps: list[Any]
    source: Source
    out: Path
    inputs: list[str]
    prefix: list[int] = field(default_factory=list)
    middle: list[int] = field(default_factory=list)
    tail: list[int] = field(default_factory=list)
    stage_reports: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def parameters(self) -> dict:
        """What a resumed run must share with the first: the pipeline as written."""
        return orjson.loads(orjson.dumps({"pipeline": self.raw, "runner_version": 1}))

    @property
    def checkpointed(self) -> bool:
        return bool(self.prefix) and bool(self.middle)

    def close(self) -> None:
        for s in self.steps:
            close = getattr(s, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):  # closing must not mask the run's result
                    close()


def split_steps(steps: list[Any]) -> tuple[list[int], list[int], list[int]]:
    stream = [i for i, s in enumerate(steps) if is_stream_step(s)]
    if not stream:
        return list(range(len(steps))), [], []
    first, last = stream[0], stream[-1]
    return list(range(first)), list(range(first, last + 1)), list(range(last + 1, len(steps)))


def prepare(pipeline_path: str | os.PathLike, *, build: bool = True) -> Plan:
    """Load, validate and build everything up front, so no error appears mid-run."""
    pipe, base, raw = load_pipeline(pipeline_path)
    where = str(pipeline_path)
    out = Path(resolve_path(pipe.outputs.groups.path, base))
    try:
        source = open_source(pipe.source, base)
    except PipelineError as exc:
        raise PipelineError(f"{where}: {exc}") from None
    for src in source.inputs:
        if _inside(src, out) or _inside(str(out), Path(src)):
            raise PipelineError(f"{where}: source.path {src} and outputs.groups {out} overlap; a run would read "
                                "what it writes (and --fresh would delete its own input)")
    specs: list[StepSpec] = []
    steps: list[Any] = []
    inputs = list(source.inputs)
    from gradeset.steps import build_step

    stage_reports: dict[int, tuple[str | None, str | None]] = {}
    for i, s in enumerate(pipe.steps):
        params = resolve_params(s.params, base)
        if s.name == "check":  # a stage check: the runner owns its report files (steps write nothing)
            report, json_path = params.pop("report", None), params.pop("json", None)
            if report or json_path:
                stage_reports[i] = (resolve_path(report, base) if report else None,
                                    resolve_path(json_path, base) if json_path else None)
        spec = StepSpec(name=s.name, params=params, ray=s.ray)
        specs.append(spec)
        for p in input_paths(params):
            if p not in inputs and not _inside(p, out):
                inputs.append(p)
        if build:
            try:
                built = build_step(s.name, params)
                validate = getattr(built, "validate", None)
                if callable(validate):  # names and options a step checks only when it first runs
                    validate()
                with contextlib.suppress(AttributeError, TypeError):
                    built._gradeset_name = s.name  # for error messages
                steps.append(built)
            except GradesetError as exc:
                raise PipelineError(f"{where}: steps[{i}].{s.name}: {exc}") from None
            except Exception as exc:  # a step's own validation (ValueError, pydantic, ...)
                raise PipelineError(f"{where}: steps[{i}].{s.name}: {type(exc).__name__}: {exc}") from None
    plan = Plan(pipeline=pipe, base=base, raw=raw, path=where, specs=specs, steps=steps, source=source,
                out=out, inputs=inputs, stage_reports=stage_reports)
    if build:
        plan.prefix, plan.middle, plan.tail = split_steps(steps)
    return plan


def _inside(p: str, folder: Path) -> bool:
    try:
        Path(p).resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
