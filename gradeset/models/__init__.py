"""Models that ship inside the package, referenced as ``gradeset:NAME``.

One resolver for every place that loads a local model (the transformers and vLLM
backends, ``gradeset train``, ``gradeset eval``), so ``--model gradeset:arith-tiny``
means the same folder everywhere and nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradeset.errors import GradesetError

PREFIX = "gradeset:"
HERE = Path(__file__).resolve().parent

# name -> folder inside this package
EMBEDDED: dict[str, str] = {
    "arith-tiny": "arith_tiny",
}


def embedded_names() -> list[str]:
    return [PREFIX + name for name in EMBEDDED]


def is_embedded(model: str | os.PathLike | None) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def embedded_path(name: str) -> Path:
    """The packaged folder of ``gradeset:NAME`` (or of a bare NAME)."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if key not in EMBEDDED:
        raise GradesetError(f"unknown embedded model {name!r}; embedded models: {', '.join(embedded_names())}")
    folder = HERE / EMBEDDED[key]
    if not (folder / "config.json").is_file():
        raise GradesetError(f"embedded model {name!r} is missing its files in {folder} "
                            "(rebuild it with scripts/build_embedded_model.py)")
    return folder


def resolve_model_name(model: str | os.PathLike) -> str:
    """``gradeset:NAME`` -> the packaged folder; anything else is returned unchanged."""
    if is_embedded(model):
        return str(embedded_path(str(model)))
    return str(model)
