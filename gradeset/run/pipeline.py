"""YAML pipelines: a source, a list of steps and the outputs, validated before any work.

A pipeline file reads::

    source:   {synth: arithmetic, n: 3000, seed: 0, test_out: out/test.jsonl}
              # or {path: data.jsonl, layout: gsm8k}
    steps:
      - verify: {task: math}
      - dedup
      - decontaminate: {against: out/test.jsonl}
    outputs:
      groups: out/groups                # a shard folder (or {path: ..., format: parquet})
      exports:
        - {path: out/dpo.jsonl, layout: trl-dpo, build: {kind: dpo, strategy: correct-vs-incorrect}}
      check: {json: out/check.json}
    run: {chunk_size: 1000}

Every relative path is taken relative to the YAML file's folder, so a pipeline runs the
same from any working directory. Errors name the YAML key (``steps[1].dedup: ...``)
because the user fixes the file, not our code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gradeset.errors import GradesetError

# Step parameter keys that hold paths (resolved against the YAML file's folder).
PATH_KEYS = frozenset({"path", "paths", "file", "files", "tokenizer", "against", "benchmarks", "benchmark", "cache", "cache_path",
                       "test", "tests", "model_path", "plugin_path"})
PATH_SUFFIXES = ("_path", "_file", "_paths", "_files", "_dir")

BUILD_KINDS = ("sft", "dpo", "grpo", "kto")
DEFAULT_LAYOUT = {"sft": "trl-sft", "dpo": "trl-dpo", "grpo": "trl-prompt", "kto": "trl-kto"}


class PipelineError(GradesetError):
    """A pipeline file that cannot run; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RayOptions(_Strict):
    """Per-step resources on the Ray runner (ignored in-process)."""

    num_cpus: float | None = Field(default=None, gt=0)
    num_gpus: float | None = Field(default=None, ge=0)
    concurrency: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)


class StepSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    ray: RayOptions = Field(default_factory=RayOptions)


class SourceSpec(BaseModel):
    """Either ``path`` (+ layout/split) or ``synth: NAME`` with the generator's parameters."""

    model_config = ConfigDict(extra="allow")

    path: str | None = None
    layout: str | None = None
    split: str | None = None
    synth: str | None = None
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.path is None) == (self.synth is None):
            raise ValueError("give exactly one of 'path' (a file or folder) or 'synth' (a generator name)")
        if self.path is not None and self.model_extra:
            raise ValueError(f"unknown keys for a file source: {sorted(self.model_extra)}")
        if self.synth is not None and (self.layout or self.split):
            raise ValueError("'layout'/'split' apply to file sources, not to synth")
        return self

    @property
    def synth_params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class GroupsOutput(_Strict):
    path: str
    format: Literal["jsonl", "parquet"] = "jsonl"


class BuildSpec(BaseModel):
    """``kind`` plus the options of the matching ``gradeset.shape`` builder (checked by name)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["sft", "dpo", "grpo", "kto"]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ExportSpec(_Strict):
    path: str
    layout: str | None = None
    build: BuildSpec | None = None
    conversational: bool = False
    system_prompt: str | None = None
    data_source: str | None = None  # verl / openrlhf: the data_source written on every row

    @model_validator(mode="after")
    def _layout(self):
        if self.layout is None:
            self.layout = DEFAULT_LAYOUT[self.build.kind] if self.build else "group"
        return self


class CheckSpec(BaseModel):
    """``report``/``json`` paths, a ``test`` file for the overlap check, a ``tokenizer`` for
    lengths; every other key is a ``gradeset.check`` threshold (checked by name)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    report: str | None = None
    json_path: str | None = Field(default=None, alias="json")
    test: str | None = None
    tokenizer: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OutputsSpec(_Strict):
    groups: GroupsOutput
    exports: list[ExportSpec] = Field(default_factory=list)
    check: CheckSpec | None = None

    @field_validator("groups", mode="before")
    @classmethod
    def _groups_str(cls, v):
        return {"path": v} if isinstance(v, str) else v


class RunSpec(_Strict):
    chunk_size: int = Field(default=1000, ge=1)
    ray_address: str | None = None
    ray_num_cpus: int | None = Field(default=None, ge=1)
    # Ray runner: groups per task. Consecutive chunks travel to a worker together until a task
    # holds this many (never less than one chunk), so the driver's work per row shrinks; shards,
    # counts and resume stay per chunk. None: 8192, or one chunk when a prefix step is
    # model-bound (generate, or asks for a GPU), where spreading chunks keeps every GPU busy.
    ray_task_groups: int | None = Field(default=None, ge=1)


class Pipeline(_Strict):
    name: str | None = None
    description: str | None = None
    license: str | None = None  # the dataset card's license field (Hugging Face identifiers, e.g. apache-2.0)
    source: SourceSpec
    steps: list[StepSpec] = Field(default_factory=list)
    outputs: OutputsSpec
    run: RunSpec = Field(default_factory=RunSpec)

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, v):
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("'steps' must be a list like [- verify: {task: math}, - dedup]")
        return [_step_entry(i, s) for i, s in enumerate(v)]


def _step_entry(i: int, entry: Any) -> dict:
    """``- dedup`` | ``- verify: {task: math}`` (+ optional ``ray: {...}``) -> StepSpec fields."""
    if isinstance(entry, str):
        return {"name": entry, "params": {}}
    if isinstance(entry, dict):
        if "name" in entry and set(entry) <= {"name", "params", "ray"}:
            return entry
        names = [k for k in entry if k != "ray"]
        if len(names) != 1:
            raise ValueError(f"step {i} must have exactly one step name (plus an optional 'ray'), got {names}")
        params = entry[names[0]]
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(f"step {i} ({names[0]}): parameters must be a mapping, got {params!r}")
        out = {"name": names[0], "params": params}
        if "ray" in entry:
            out["ray"] = entry["ray"]
        return out
    raise ValueError(f"step {i} must be a name or a mapping {{name: params}}, got {entry!r}")


# --------------------------------------------------------------------------- loading


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in ("function-after[_one_kind()]",)
                    and not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{_loc(loc)}: {msg}")
    return f"{path}: invalid pipeline:\n  " + "\n  ".join(lines)


def load_pipeline(path: str | os.PathLike) -> tuple[Pipeline, Path, dict]:
    """Parse and validate a pipeline file; returns (pipeline, its folder, the raw mapping)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise PipelineError(f"{p}: no such pipeline file")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineError(f"{p}: not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{p}: not UTF-8 text: {exc}") from exc
    return parse_pipeline(raw, p.resolve().parent, str(p)), p.resolve().parent, raw


def parse_pipeline(raw: Any, base_dir: str | os.PathLike, where: str = "<pipeline>") -> Pipeline:
    if not isinstance(raw, dict):
        raise PipelineError(f"{where}: a pipeline is a mapping with source, steps and outputs")
    try:
        pipe = Pipeline.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(_format_errors(where, exc)) from None
    _check_names(pipe, where)
    return pipe


def _check_names(pipe: Pipeline, where: str) -> None:
    """Names that can be checked without running anything: steps, layouts, build options."""
    from gradeset.steps import STEPS

    for i, s in enumerate(pipe.steps):
        if s.name not in STEPS and ":" not in s.name:
            raise PipelineError(f"{where}: steps[{i}]: unknown step {s.name!r}; known: {', '.join(sorted(STEPS))}")
    from gradeset.formats import writable_layouts

    layouts = set(writable_layouts()) | _fallback_layouts()
    for i, e in enumerate(pipe.outputs.exports):
        if e.layout not in layouts:
            from gradeset.formats.registry import _ALIASES

            if e.layout not in _ALIASES:
                raise PipelineError(f"{where}: outputs.exports[{i}].layout: unknown layout {e.layout!r}; "
                                    f"known: {', '.join(sorted(layouts))}")
        if e.build is not None:
            bad = sorted(set(e.build.options) - set(builder_options(e.build.kind)))
            if bad:
                raise PipelineError(f"{where}: outputs.exports[{i}].build: unknown option(s) {bad} for kind "
                                    f"{e.build.kind!r}; known: {sorted(builder_options(e.build.kind))}")
    if pipe.outputs.check is not None:
        try:
            from gradeset.check.config import CheckConfig

            CheckConfig.from_dict(pipe.outputs.check.options)
        except ImportError:  # pragma: no cover
            pass
        except (GradesetError, TypeError, ValueError) as exc:
            raise PipelineError(f"{where}: outputs.check: {exc}") from None
    if pipe.source.layout is not None:
        from gradeset.formats import readable_layouts

        if pipe.source.layout not in readable_layouts():
            raise PipelineError(f"{where}: source.layout: unknown layout {pipe.source.layout!r}; known: "
                                f"{', '.join(readable_layouts())}")


def _fallback_layouts() -> set[str]:
    try:
        from gradeset.shape.rows import _FALLBACK

        return set(_FALLBACK)
    except ImportError:  # pragma: no cover - shaping package absent
        return set()


# --------------------------------------------------------------------------- shaping builders

_BUILDERS = {
    "sft": ("gradeset.shape.sft", "iter_sft"),
    "dpo": ("gradeset.shape.dpo", "iter_dpo"),
    "grpo": ("gradeset.shape.grpo", "iter_grpo"),
    "kto": ("gradeset.shape.grpo", "iter_kto"),
}


def builder(kind: str):
    """The streaming shaper for a build kind: ``f(groups, **opts, stats=dict)`` -> iterator."""
    import importlib

    module, name = _BUILDERS[kind]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PipelineError(f"build kind {kind!r} is not available ({module}.{name}): {exc}") from exc


def builder_options(kind: str) -> list[str]:
    import inspect

    sig = inspect.signature(builder(kind))
    return [n for n, p in list(sig.parameters.items())[1:]
            if n not in ("stats", "on_skip") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# --------------------------------------------------------------------------- paths


def is_path_key(key: str) -> bool:
    return key in PATH_KEYS or key.endswith(PATH_SUFFIXES)


def resolve_path(value: str, base: Path) -> str:
    if "://" in value or os.path.isabs(value):
        return value
    return str((base / os.path.expanduser(value)).resolve()) if not value.startswith("~") else \
        os.path.expanduser(value)


def resolve_params(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """Path-like parameters made absolute against the pipeline's folder (recursively)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if is_path_key(k):
            if k == "tokenizer" and isinstance(v, str) and not (base / v).exists():
                out[k] = v  # a hub id, not a local folder
            elif isinstance(v, str):
                out[k] = resolve_path(v, base)
            elif isinstance(v, list):
                out[k] = [resolve_path(x, base) if isinstance(x, str) else x for x in v]
            else:
                out[k] = v
        elif isinstance(v, dict):
            out[k] = resolve_params(v, base)
        else:
            out[k] = v
    return out


def input_paths(params: dict[str, Any]) -> list[str]:
    """Existing files/folders named by (resolved) path parameters: recorded as run inputs."""
    found: list[str] = []
    for k, v in params.items():
        if isinstance(v, dict):
            found += input_paths(v)
        elif is_path_key(k) and k not in ("cache", "cache_path"):
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, str) and os.path.isabs(x) and os.path.exists(x):
                    found.append(x)
    return found
