"""Token accounting and cost: prices per million tokens, totals, budget stops.

Prices come from the user (``--price-per-mtok in=0.15,out=0.6`` or a YAML file), never
from a built-in table that would go stale. Tokens are what the server reported in
``usage``; a request for ``n`` samples bills its prompt once, so totals are counted per
request, not per sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gradeset.errors import GradesetError

IN_KEYS = ("in", "input", "prompt", "input_per_mtok")
OUT_KEYS = ("out", "output", "completion", "output_per_mtok")


@dataclass(frozen=True)
class Prices:
    """Price per million prompt (input) and completion (output) tokens, in the user's currency."""

    input: float
    output: float

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return ((prompt_tokens or 0) * self.input + (completion_tokens or 0) * self.output) / 1e6


def _number(value: Any, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GradesetError(f"{where}: {value!r} is not a number") from None
    if not x >= 0 or x == float("inf"):
        raise GradesetError(f"{where}: a price must be a number >= 0, got {value!r}")
    return x


def _from_mapping(data: dict, where: str) -> Prices:
    found_in = [k for k in IN_KEYS if k in data]
    found_out = [k for k in OUT_KEYS if k in data]
    unknown = set(data) - set(IN_KEYS) - set(OUT_KEYS)
    if unknown or not found_in or not found_out:
        raise GradesetError(f"{where}: expected in=PRICE,out=PRICE (per million tokens), got keys "
                            f"{sorted(map(str, data))}")
    return Prices(_number(data[found_in[0]], f"{where}: {found_in[0]}"),
                  _number(data[found_out[0]], f"{where}: {found_out[0]}"))


def parse_prices(spec: str, model: str | None = None) -> Prices:
    """``in=0.15,out=0.6`` or a YAML file: ``{in: 0.15, out: 0.6}`` or a table by model name.

    A table (``models: {NAME: {in: ..., out: ...}}`` or ``NAME: {in: ..., out: ...}``)
    is looked up by ``model``; a model missing from it is an error, not a free run.
    """
    spec = spec.strip()
    if os.path.isfile(spec):
        import yaml

        try:
            with open(spec, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError) as exc:
            raise GradesetError(f"{spec}: cannot read the price table: {exc}") from exc
        if not isinstance(data, dict):
            raise GradesetError(f"{spec}: expected a mapping (in: PRICE, out: PRICE, or a table by model)")
        if set(data) & set(IN_KEYS + OUT_KEYS):
            return _from_mapping(data, spec)
        table = data.get("models", data)
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise GradesetError(f"{spec}: expected in/out prices or a table NAME: {{in: PRICE, out: PRICE}}")
        if model not in table:
            raise GradesetError(f"{spec}: no prices for model {model!r}; the table has "
                                f"{', '.join(sorted(map(str, table))) or 'no models'}")
        return _from_mapping(table[model], f"{spec}: {model}")
    if "=" not in spec:
        raise GradesetError(f"--price-per-mtok: {spec!r} is neither in=PRICE,out=PRICE nor an existing YAML file")
    data = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep:
            raise GradesetError(f"--price-per-mtok: {part!r} is not KEY=PRICE")
        data[k.strip().lower()] = v.strip()
    return _from_mapping(data, "--price-per-mtok")


def prices_of(cfg) -> Prices | None:
    if cfg.price_in_per_mtok is None or cfg.price_out_per_mtok is None:
        return None
    return Prices(cfg.price_in_per_mtok, cfg.price_out_per_mtok)


def budget_exceeded(cfg, prompt_tokens: int, completion_tokens: int, cost: float) -> str | None:
    """Why the run must stop sending (a limit reached), or None."""
    total = prompt_tokens + completion_tokens
    if cfg.max_total_tokens is not None and total >= cfg.max_total_tokens:
        return f"--max-total-tokens {cfg.max_total_tokens} reached"
    if cfg.max_cost is not None and cost >= cfg.max_cost:
        return f"--max-cost {cfg.max_cost:g} reached"
    return None


def totals_line(prompt_tokens: int, completion_tokens: int, cost: float | None) -> str:
    line = (f"tokens: {prompt_tokens} prompt + {completion_tokens} completion = "
            f"{prompt_tokens + completion_tokens}")
    if cost is not None:
        line += f"; estimated cost {cost:.4f}"
    return line
