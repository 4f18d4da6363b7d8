"""Pipeline sources: a file or folder in any layout, or a named synthetic generator.

A source yields canonical groups (with ids) one at a time; the runner cuts them into
fixed-size chunks. Synthetic sources may also write side files (the arithmetic test
set) before the run starts, so steps such as decontaminate can name them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradeset.records import ensure_id
from gradeset.run.pipeline import PipelineError, SourceSpec, resolve_path

# Synth parameters holding output paths (resolved against the pipeline's folder).
SYNTH_PATH_KEYS = ("test_out", "out", "test_path")


@dataclass
class Source:
    """What the runner needs from a source: its groups, its input files, its size if known."""

    describe: str
    groups: Callable[[Any], Iterator[dict]]  # (on_reject) -> groups
    inputs: list[str] = field(default_factory=list)
    total: int | None = None


def open_source(spec: SourceSpec, base: Path) -> Source:
    if spec.path is not None:
        return _file_source(spec, base)
    return _synth_source(spec, base)


def _file_source(spec: SourceSpec, base: Path) -> Source:
    path = resolve_path(spec.path, base)
    p = Path(path)
    if not p.exists():
        raise PipelineError(f"source.path: {path}: no such file or folder")
    if p.is_file() and p.stat().st_size == 0:
        raise PipelineError(f"source.path: {path}: the file is empty")

    def groups(on_reject) -> Iterator[dict]:
        from gradeset.formats import read_groups

        for n, g in enumerate(read_groups(path, layout=spec.layout, split=spec.split, on_reject=on_reject), 1):
            yield ensure_id(g)
            if spec.limit is not None and n >= spec.limit:
                return

    return Source(describe=path, groups=groups, inputs=[path])


def synth_function(name: str) -> Callable[..., Any]:
    """``gradeset.sources.<name>``'s group generator (imported only when used)."""
    try:
        mod = importlib.import_module(f"gradeset.sources.{name}")
    except ImportError as exc:
        raise PipelineError(f"source.synth: no synthetic source {name!r} (gradeset.sources.{name}: {exc})") from exc
    for attr in ("synth_groups", "generate_groups", f"{name}_groups", "generate"):
        fn = getattr(mod, attr, None)
        if callable(fn):
            return fn
    raise PipelineError(f"source.synth: gradeset.sources.{name} has no group generator function")


def _synth_source(spec: SourceSpec, base: Path) -> Source:
    fn = synth_function(spec.synth)
    params = spec.synth_params
    for k in SYNTH_PATH_KEYS:
        if isinstance(params.get(k), str):
            params[k] = resolve_path(params[k], base)
    accepted = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        bad = sorted(set(params) - set(accepted))
        if bad:
            raise PipelineError(f"source: unknown option(s) {bad} for synth {spec.synth!r}; known: "
                                f"{sorted(k for k in accepted if not k.startswith('_'))}")
    try:
        result = fn(**params)
    except PipelineError:
        raise
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"source: synth {spec.synth!r}: {exc}") from exc
    train = result[0] if isinstance(result, tuple) else result
    rows = list(train)  # synthetic sets are generated in memory by design; a list makes reruns identical
    if spec.limit is not None:
        rows = rows[: spec.limit]

    def groups(on_reject) -> Iterator[dict]:
        for g in rows:
            yield ensure_id(dict(g))

    side = [params[k] for k in SYNTH_PATH_KEYS if isinstance(params.get(k), str) and Path(params[k]).exists()]
    return Source(describe=f"synth:{spec.synth}", groups=groups, inputs=side, total=len(rows))
