"""Launch a TRL trainer on gradeset data and lay out the run as seed 004 does.

```
OUT/
├── model/    weights + tokenizer (the LoRA adapter with --lora)
└── debug/    STAGE_RUNID_train.json (settings, data, result), STAGE_RUNID_train_log.jsonl,
              and with --eval-data: STAGE_RUNID.csv, STAGE_RUNID_metrics.txt / .json
```

``--model`` may be a model folder, a hub id, an earlier run's ``OUT`` (its ``model/`` is
used, as seed 004's ``--base-model outputs/prep_sft``) or a LoRA adapter folder. An adapter
is trained further with ``--lora`` (the saved adapter still names the original base, so
it reloads by itself) or merged into its base for full fine-tuning without it.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError, require
from gradeset.train.config import (
    build_config,
    build_lora,
    get_method,
    resolve_settings,
    to_jsonable,
)


def resolve_model(model: str | os.PathLike) -> tuple[str, bool]:
    """(path or hub id, is_adapter). An earlier run's folder resolves to its ``model/``;
    ``gradeset:NAME`` resolves to the embedded model packaged with gradeset."""
    from gradeset.models import resolve_model_name

    p = Path(resolve_model_name(model))
    if p.is_dir():
        inner = p / "model"
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists() and inner.is_dir():
            p = inner
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists():
            raise GradesetError(f"{model}: not a model folder (no config.json or adapter_config.json)")
        return str(p.resolve()), (p / "adapter_config.json").exists()
    if p.exists():
        raise GradesetError(f"{model}: expected a model folder, got a file")
    return str(model), False  # a hub id: transformers resolves it (network permitting)


def _dtype(torch, name: str | None):
    if name in (None, "auto"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return getattr(torch, name)
    except AttributeError as exc:
        raise GradesetError(f"unknown --dtype {name!r}; use auto, float32, bfloat16 or float16") from exc


def load_model(model: str, *, lora: bool, lora_opts: Mapping[str, Any], dtype: str | None = None):
    """(model, tokenizer, peft_config or None, notes)."""
    torch = require("torch", "train", "gradeset train")
    transformers = require("transformers", "train", "gradeset train")
    path, is_adapter = resolve_model(model)
    notes: list[str] = []
    kw = {"dtype": _dtype(torch, dtype)}
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
        if is_adapter:
            peft = require("peft", "train", "loading a LoRA adapter")
            with open(Path(path) / "adapter_config.json", encoding="utf-8") as fh:
                base_path = json.load(fh).get("base_model_name_or_path")
            if not base_path:
                raise GradesetError(f"{path}/adapter_config.json names no base model")
            base = transformers.AutoModelForCausalLM.from_pretrained(base_path, **kw)
            if lora:
                net = peft.PeftModel.from_pretrained(base, path, is_trainable=True)
                notes.append(f"continuing LoRA adapter {path} (base {base_path})")
                if lora_opts:
                    notes.append("LoRA options ignored: the existing adapter's settings are kept")
                peft_config = None
            else:
                net = peft.PeftModel.from_pretrained(base, path).merge_and_unload()
                notes.append(f"merged LoRA adapter {path} into {base_path} for full fine-tuning")
                peft_config = None
        else:
            net = transformers.AutoModelForCausalLM.from_pretrained(path, **kw)
            peft_config = build_lora(lora_opts) if lora else None
    except OSError as exc:
        raise GradesetError(f"cannot load model {model}: {exc}") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return net, tok, peft_config, notes


def _trainable_norms(model) -> dict[str, float]:
    """One number per trainable tensor: enough to tell whether training moved it, cheap to keep."""
    return {n: float(p.detach().float().norm()) for n, p in model.named_parameters() if p.requires_grad}


def _make_trainer(method, model, tok, cfg, dataset, peft_config, reward_funcs):
    import trl

    cls = getattr(trl, method.trainer_class)
    kw: dict[str, Any] = {"model": model, "args": cfg, "train_dataset": dataset, "processing_class": tok}
    if peft_config is not None:
        kw["peft_config"] = peft_config
    if method.kind == "online":
        kw["reward_funcs"] = reward_funcs
    try:
        return cls(**kw)
    except (ValueError, TypeError, KeyError) as exc:
        raise GradesetError(f"{cls.__name__} rejected the setup: {exc}") from exc


def _write_json(path: Path, payload: Any) -> None:
    from gradeset.io import atomic_open

    with atomic_open(path, "w") as fh:
        json.dump(payload, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


ANSWER_KEYS = ("completion", "chosen", "rejected")
CHAT_KEYS = ("messages", "prompt", *ANSWER_KEYS)


def _as_chat(value: Any, role: str) -> Any:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def _with_system(msgs: Any, system_prompt: str, where: str) -> Any:
    if not isinstance(msgs, list):
        return msgs
    first = msgs[0] if msgs else None
    if isinstance(first, Mapping) and first.get("role") == "system":
        if first.get("content") != system_prompt:
            raise GradesetError(f"{where}: already starts with a different system message than --system-prompt; "
                                "drop the flag or rebuild the data with the system prompt you want")
        return msgs
    return [{"role": "system", "content": system_prompt}, *msgs]


def apply_shaping_flags(rows: list[dict], data: str | os.PathLike, *, system_prompt: str | None,
                        conversational: bool) -> tuple[list[dict], int]:
    """--conversational / --system-prompt applied to rows already in a TRL layout.

    Those flags used to act only when gradeset shaped groups, and were silently ignored
    for TRL-ready rows: the model then trained in another format than it was sampled and
    evaluated in. Now plain rows become chat messages (``--conversational``) and chat rows
    get the system message (``--system-prompt``) unless they already have it. What cannot
    be applied (a system prompt on plain-text rows, a different system message already
    there, raw ``text`` rows) is refused with a message. Returns (rows, rows changed).
    """
    if not rows or not (system_prompt or conversational):
        return rows, 0
    out, changed = [], 0
    for i, row in enumerate(rows, 1):
        where = f"{data}: row {i}"
        if not any(k in row for k in CHAT_KEYS):
            raise GradesetError(f"{where}: plain 'text' rows have no prompt to put in chat form, so "
                                "--conversational / --system-prompt cannot apply; drop them")
        r = dict(row)
        chat = any(isinstance(r.get(k), list) for k in CHAT_KEYS)
        if not chat:
            if not conversational:
                raise GradesetError(
                    f"{where}: plain-text rows cannot carry --system-prompt as a system message; add "
                    "--conversational (train in chat form), or rebuild the data with `gradeset build ... "
                    "--system-prompt S`")
            if "prompt" in r:
                r["prompt"] = _as_chat(r["prompt"], "user")
            for k in ANSWER_KEYS:
                if k in r:
                    r[k] = _as_chat(r[k], "assistant")
        if system_prompt:
            if "messages" in r:
                r["messages"] = _with_system(r["messages"], system_prompt, where)
            elif "prompt" in r:
                r["prompt"] = _with_system(r["prompt"], system_prompt, where)
            else:  # implicit-prompt preference rows: each side is a whole conversation
                for k in ("chosen", "rejected"):
                    if k in r:
                        r[k] = _with_system(r[k], system_prompt, where)
        changed += r != row
        out.append(r)
    return out, changed


def train(method: str, data: str | os.PathLike, model: str | os.PathLike, out: str | os.PathLike, *,
          lora: bool = False, config_file: str | os.PathLike | None = None, flags: Mapping[str, Any] | None = None,
          sets: Sequence[str] | None = None, task: str | None = None, rewards: str | None = None,
          reward_workers: int = 1, reward_timeout: float = 5.0, reward_opts: Mapping[str, Any] | None = None,
          system_prompt: str | None = None,
          conversational: bool = False, limit: int | None = None, dtype: str | None = None,
          stage: str | None = None, run_id: str | None = None, eval_data: str | os.PathLike | None = None,
          eval_opts: Mapping[str, Any] | None = None, on_reject=None, log=print) -> dict[str, Any]:
    """Train with TRL and save OUT/model + OUT/debug; evaluate when eval_data is given.

    Returns a summary dict (also written to ``debug/STAGE_RUNID_train.json``).
    """
    from gradeset.evaluate.report import new_run_id
    from gradeset.train.data import load_rows, to_dataset
    from gradeset.train.rewards import build_rewards, parse_reward_spec

    m = get_method(method)
    require("trl", "train", "gradeset train")
    out = Path(out)
    model_dir, debug_dir = out / "model", out / "debug"
    stage = stage or m.name
    run_id = run_id or new_run_id()
    extra: dict[str, Any] = {"disable_tqdm": bool(os.environ.get("GRADESET_NO_PROGRESS"))}
    torch = require("torch", "train", "gradeset train")
    if not torch.cuda.is_available():  # TRL defaults to bf16, which CPUs refuse: train in fp32 there
        extra.update({"use_cpu": True, "bf16": False})
    settings, lora_opts = resolve_settings(m, output_dir=out / "checkpoints", config_file=config_file,
                                           flags=flags, sets=list(sets or []), extra_defaults=extra)
    if lora_opts and not lora:
        lora = True  # a lora: section in the config file asks for LoRA
    reward_funcs, reward_names = [], []
    if m.kind == "online":
        spec = parse_reward_spec(rewards)
        reward_funcs, weights = build_rewards(spec, task=task, workers=reward_workers, timeout=reward_timeout,
                                              verifier_opts=dict(reward_opts or {}))
        reward_names = [name for name, _ in spec]
        if settings.get("reward_weights") is None:
            settings["reward_weights"] = weights
        elif len(settings["reward_weights"]) != len(reward_funcs):
            raise GradesetError(f"reward_weights has {len(settings['reward_weights'])} values for "
                                f"{len(reward_funcs)} rewards ({', '.join(reward_names)})")
    elif rewards:
        raise GradesetError(f"--reward applies to grpo, gspo and dr_grpo, not {m.name}")
    cfg = build_config(m, settings)

    rows, how = load_rows(data, m.kind, system_prompt=system_prompt, conversational=conversational,
                          limit=limit, on_reject=on_reject)
    if how.startswith("used as is"):
        rows, changed = apply_shaping_flags(rows, data, system_prompt=system_prompt, conversational=conversational)
        if changed:
            how += f"; --conversational/--system-prompt applied to {changed} rows"
    log(f"train {m.name}: {len(rows)} rows from {data}: {how}")
    if m.kind == "online":
        per_batch = cfg.generation_batch_size // cfg.num_generations
        if len(rows) < per_batch:
            raise GradesetError(
                f"{m.name} samples {per_batch} prompts per generation batch (generation_batch_size "
                f"{cfg.generation_batch_size} / num_generations {cfg.num_generations}) but {data} has only "
                f"{len(rows)}; add prompts or lower per_device_train_batch_size / steps_per_generation")
    _check_golds(reward_funcs, rows, data)
    dataset = to_dataset(rows, data)
    net, tok, peft_config, notes = load_model(str(model), lora=lora, lora_opts=lora_opts, dtype=dtype)
    for n in notes:
        log(n)
    trainer = _make_trainer(m, net, tok, cfg, dataset, peft_config, reward_funcs)
    kept = getattr(trainer, "train_dataset", None)
    if kept is not None and hasattr(kept, "__len__") and len(kept) == 0:
        limit = settings.get("max_length")
        raise GradesetError(
            f"{trainer.__class__.__name__} dropped all {len(rows)} training rows while preparing them"
            + (f" (with max_length={limit} the prompt may leave no room for the completion; raise --max-length)"
               if limit else ""))
    before = _trainable_norms(trainer.model)
    started = time.time()
    result = trainer.train()
    seconds = time.time() - started
    after = _trainable_norms(trainer.model)
    if trainer.state.global_step == 0:
        raise GradesetError(f"no training step ran: {len(rows)} rows are fewer than one batch; nothing saved")
    changed = sum(1 for k, v in after.items() if k in before and v != before[k])

    model_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(model_dir))
    tok.save_pretrained(str(model_dir))
    is_adapter = (model_dir / "adapter_config.json").exists()
    summary: dict[str, Any] = {
        "method": m.name, "description": m.description, "stage": stage, "run_id": run_id,
        "model": str(model), "data": str(data), "data_rows": len(rows), "data_source": how,
        "lora": bool(lora or is_adapter), "saved": "lora-adapter" if is_adapter else "full-model",
        "rewards": [{"name": n, "weight": w} for n, w in zip(reward_names, settings.get("reward_weights") or [],
                                                             strict=False)],
        "train_runtime_s": round(seconds, 3), "global_step": trainer.state.global_step,
        "train_loss": getattr(result, "training_loss", None),
        "trainable_tensors": len(after), "trainable_tensors_changed": changed,
        "notes": notes, "trl_config": to_jsonable(cfg),
        "lora_config": to_jsonable(peft_config) if peft_config is not None else None,
        "versions": _versions(),
    }
    debug_dir.mkdir(parents=True, exist_ok=True)
    log_path = debug_dir / f"{stage}_{run_id}_train_log.jsonl"
    from gradeset.io import atomic_open

    with atomic_open(log_path, "w") as fh:
        for entry in trainer.state.log_history:
            fh.write(json.dumps(entry, default=str) + "\n")
    for f in reward_funcs:
        f.close()
    _check_rewards_scored(reward_funcs)
    del trainer, net
    gc.collect()
    _empty_cache()
    ckpt = out / "checkpoints"
    if ckpt.is_dir() and not any(ckpt.iterdir()):
        ckpt.rmdir()

    if eval_data is not None:
        from gradeset.evaluate.runner import evaluate_model

        opts = dict(eval_opts or {})
        opts.setdefault("task", task)
        opts.setdefault("system_prompt", system_prompt)
        opts.setdefault("on_reject", on_reject)
        ev = evaluate_model(model_dir, eval_data, out_dir=out, stage=stage, run_id=run_id, **opts)
        summary["eval"] = {"metrics": {k: v for k, v in ev["metrics"].items() if not k.startswith("by_")},
                           "files": ev["files"]}
    summary["files"] = {"model": str(model_dir), "log": str(log_path)}
    _write_json(debug_dir / f"{stage}_{run_id}_train.json", summary)
    return summary


def _check_golds(reward_funcs, rows: list[dict], data) -> None:
    """Refuse before training when no row has the gold a reward needs: every reward would be None."""
    for f in reward_funcs:
        if getattr(f, "needs_gold", False) and not any(r.get(f.answer_field) not in (None, "") for r in rows):
            raise GradesetError(f"{data}: no row has a gold answer in column {f.answer_field!r}, so reward "
                                f"{f.__name__} would be None for every completion and nothing would be learnt; "
                                "export the data with its answers (gradeset build grpo / convert --to trl-prompt)")


def _check_rewards_scored(reward_funcs) -> None:
    """A run whose rewards were all None trained on nothing: fail loudly instead of exiting 0."""
    for f in reward_funcs:
        if getattr(f, "calls", 0) and not getattr(f, "scored", 0):
            raise GradesetError(f"reward {f.__name__}: all {f.calls} completions scored None (no gold answer, or "
                                "every grading failed or timed out): the run learnt nothing from it")


def _empty_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def _versions() -> dict[str, str]:
    out = {}
    for name in ("trl", "transformers", "peft", "torch", "datasets"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            pass
    return out
