"""TRL trainer configs for sft / dpo / kto / grpo / gspo / dr_grpo, with validated overrides.

gradeset does not train: it builds the TRL config dataclass, hands TRL the data and the
reward functions, and lays out the outputs. GSPO and Dr. GRPO are GRPO with different
settings (not new data formats, whatever seed 000 says):

- **GSPO** (Group Sequence Policy Optimization, Qwen 2025): sequence-level importance
  ratios. TRL's paper index reproduces the paper with ``importance_sampling_level="sequence"``,
  ``loss_type="grpo"``, ``beta=0.0``, ``epsilon=3e-4``, ``epsilon_high=4e-4``,
  ``gradient_accumulation_steps=1`` and ``steps_per_generation=4``. The sequence ratio only
  matters off-policy, which ``steps_per_generation=4`` makes happen.
- **Dr. GRPO** ("GRPO done right", Liu et al. 2025): ``loss_type="dr_grpo"`` (no
  length normalisation) and ``scale_rewards="none"`` (no per-group std division).

Precedence, lowest first: TRL defaults, gradeset's defaults, the method preset, the
``--config`` YAML file, explicit command-line flags, ``--set key=value``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError


@dataclass(frozen=True)
class Method:
    name: str
    config_class: str      # trl attribute name
    trainer_class: str     # trl attribute name
    kind: str              # "sft" | "preference" | "unpaired" | "online"
    preset: Mapping[str, Any]
    description: str


METHODS: dict[str, Method] = {
    "sft": Method("sft", "SFTConfig", "SFTTrainer", "sft", {}, "supervised fine-tuning on prompt+completion / messages"),
    "dpo": Method("dpo", "DPOConfig", "DPOTrainer", "preference", {}, "direct preference optimisation on chosen/rejected"),
    "kto": Method("kto", "KTOConfig", "KTOTrainer", "unpaired", {}, "KTO on prompt/completion/label (unpaired)"),
    "grpo": Method("grpo", "GRPOConfig", "GRPOTrainer", "online", {}, "GRPO: group-relative advantages, verifier rewards"),
    "gspo": Method(
        "gspo", "GRPOConfig", "GRPOTrainer", "online",
        {
            "importance_sampling_level": "sequence",
            "loss_type": "grpo",
            "beta": 0.0,
            "epsilon": 3e-4,
            "epsilon_high": 4e-4,
            "gradient_accumulation_steps": 1,
            "steps_per_generation": 4,
        },
        "GSPO: GRPO with sequence-level importance ratios (paper settings)",
    ),
    "dr_grpo": Method(
        "dr_grpo", "GRPOConfig", "GRPOTrainer", "online",
        {"loss_type": "dr_grpo", "scale_rewards": "none"},
        "Dr. GRPO: no length normalisation, no reward std scaling",
    ),
}
ALIASES = {"dr-grpo": "dr_grpo", "drgrpo": "dr_grpo"}

# gradeset's own defaults: logs we can read back, no surprise uploads, one save at the end.
BASE_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 1,
    "save_strategy": "no",
}

# Sections of the YAML file that are not TRL config fields.
LORA_SECTION = "lora"

LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": "all-linear",
    "task_type": "CAUSAL_LM",
}


def get_method(name: str) -> Method:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise GradesetError(f"unknown training method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[key]


def trl_class(name: str):
    from gradeset.errors import require

    trl = require("trl", "train", "gradeset train")
    return getattr(trl, name)


def config_fields(method: Method) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(trl_class(method.config_class)) if f.init}


def _unknown(keys, known, what: str, source: str) -> None:
    bad = [k for k in keys if k not in known]
    if not bad:
        return
    hints = []
    for k in bad:
        close = difflib.get_close_matches(k, list(known), n=1)
        hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise GradesetError(f"{source}: unknown {what} field(s): {', '.join(hints)}")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise GradesetError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise GradesetError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GradesetError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["beta=0.1", "lora.r=8"]`` -> ``{"beta": 0.1, "lora": {"r": 8}}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise GradesetError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        key = key.strip()
        if key.startswith(f"{LORA_SECTION}."):
            out.setdefault(LORA_SECTION, {})[key[len(LORA_SECTION) + 1:]] = value
        else:
            out[key] = value
    return out


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win; the ``lora`` section is merged key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            if k == LORA_SECTION and isinstance(v, Mapping):
                out[LORA_SECTION] = {**out.get(LORA_SECTION, {}), **v}
            else:
                out[k] = v
    return out


def resolve_settings(method: Method, *, output_dir: str | os.PathLike, config_file: str | os.PathLike | None = None,
                     flags: Mapping[str, Any] | None = None, sets: list[str] | None = None,
                     extra_defaults: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TRL config kwargs, LoRA kwargs) after layering and validating every key.

    flags are command-line values; None means "not given" and is dropped.
    """
    file_layer = load_yaml(config_file) if config_file else {}
    if isinstance(file_layer.get(method.name), Mapping):
        # a file may hold one section per method: {grpo: {...}, sft: {...}, lora: {...}}
        file_layer = merge_layers({k: v for k, v in file_layer.items() if k not in METHODS}, file_layer[method.name])
    else:
        file_layer = {k: v for k, v in file_layer.items() if not (k in METHODS and isinstance(v, Mapping))}
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    set_layer = parse_set(sets)
    known = config_fields(method)
    name = trl_class(method.config_class).__name__
    for layer, source in ((file_layer, str(config_file)), (given, "command-line flags"), (set_layer, "--set")):
        if "output_dir" in layer:
            raise GradesetError(f"{source}: output_dir is set by --out (checkpoints go to OUT/checkpoints)")
        _unknown([k for k in layer if k != LORA_SECTION], known, f"{name} (gradeset train {method.name})", source)
        lora_layer = layer.get(LORA_SECTION)
        if lora_layer is not None:
            if not isinstance(lora_layer, Mapping):
                raise GradesetError(f"{source}: lora: expected a mapping of peft.LoraConfig fields")
            _unknown(list(lora_layer), _lora_fields(), "LoRA (peft.LoraConfig)", source)
    layers = merge_layers(BASE_DEFAULTS, extra_defaults or {}, method.preset, file_layer, given, set_layer)
    lora = dict(layers.pop(LORA_SECTION, {}) or {})
    layers["output_dir"] = str(output_dir)
    return layers, lora


def _lora_fields() -> set[str]:
    from gradeset.errors import require

    peft = require("peft", "train", "LoRA training")
    return {f.name for f in dataclasses.fields(peft.LoraConfig) if f.init}


def build_config(method: Method, settings: Mapping[str, Any]):
    """Instantiate the TRL config; TRL's own validation errors become one clear line."""
    cls = trl_class(method.config_class)
    try:
        return cls(**settings)
    except (ValueError, TypeError) as exc:
        raise GradesetError(f"{cls.__name__}: {exc}") from exc


def build_lora(settings: Mapping[str, Any]):
    from gradeset.errors import require

    peft = require("peft", "train", "LoRA training")
    merged = {**LORA_DEFAULTS, **settings}
    try:
        return peft.LoraConfig(**merged)
    except (ValueError, TypeError) as exc:
        raise GradesetError(f"LoraConfig: {exc}") from exc


def to_jsonable(config: Any) -> dict[str, Any]:
    """A TRL/peft config as plain JSON data, for debug/ (enums and sets made readable)."""
    import json

    raw = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    return json.loads(json.dumps(raw, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
