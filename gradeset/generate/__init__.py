"""Sampling N completions per prompt from any model, resumably.

Public API::

    from gradeset.generate import GenerateConfig, generate_groups, complete

    cfg = GenerateConfig(backend="openai", model="Qwen/Qwen3-8B", base_url="http://localhost:8000/v1", n=16)
    groups = generate_groups(groups, cfg, cache_path="run.gencache.jsonl")   # resumable
    texts = complete(["Paraphrase: ..."], cfg)                               # one text per prompt

Backends: ``openai`` (any OpenAI-compatible server), ``anthropic`` (Messages API),
``vllm`` (offline engine), ``transformers`` (local model folder).
"""

from __future__ import annotations

from typing import Any

from gradeset.generate.cache import RequestCache, default_cache_path, sample_key
from gradeset.generate.config import GenerateConfig
from gradeset.generate.progress import Stats
from gradeset.generate.prompts import Prompt, append_options, build_prompt
from gradeset.records import group_id

__all__ = [
    "GenerateConfig", "Prompt", "RequestCache", "Stats", "append_options", "build_prompt", "complete",
    "complete_full", "default_cache_path", "generate_groups", "sample_key",
]


def _config(cfg: GenerateConfig | dict[str, Any]) -> GenerateConfig:
    return cfg if isinstance(cfg, GenerateConfig) else GenerateConfig(**cfg)


def generate_groups(groups: list[dict], cfg: GenerateConfig | dict[str, Any], cache_path=None, *,
                    progress: bool = False, stats: Stats | None = None, backend=None) -> list[dict]:
    """Groups with ``cfg.n`` new responses each (appended after any they already have).

    Every response carries ``meta``: how it was asked for (model, backend, temperature,
    top_p, top_k, max_tokens, seed, n, system_prompt, chat_template), what came back
    (finish_reason, usage {prompt_tokens, completion_tokens}, generation_time_ms,
    two_step_applied, error) and, with prices, its cost share. Groups get a top-level
    ``system_prompt`` when one was used. A sample whose request still failed after the retries is
    kept as ``{"text": "", "failed": true, "meta": {"error": ...}}`` and counted in
    ``stats.failed``; a re-run with the same cache retries just those.

    With ``cache_path`` every finished sample is appended to that file at once, and a
    later call with the same file (after a crash or Ctrl-C) sends only what is missing.
    """
    from gradeset.generate.engine import Engine

    cfg = _config(cfg)
    with RequestCache(cache_path) as cache:
        engine = Engine(cfg, cache, progress=progress, stats=stats, backend=backend)
        return engine.run(list(groups))


def complete_full(prompts: list[str | list[dict]], cfg: GenerateConfig | dict[str, Any], *,
                  cache_path=None, backend=None, stats: Stats | None = None) -> list[dict]:
    """One response dict (text, failed, meta) per prompt, in order; ``cfg.n`` is ignored."""
    from gradeset.generate.engine import Engine

    cfg = _config(cfg)
    groups = [{"id": group_id(p), "prompt": p} for p in prompts]
    with RequestCache(cache_path) as cache:
        engine = Engine(cfg, cache, stats=stats, backend=backend)
        out = engine.run(groups, n=1)
    return [g["responses"][0] if g["responses"] else {"text": "", "failed": True, "meta": {}} for g in out]


def complete(prompts: list[str | list[dict]], cfg: GenerateConfig | dict[str, Any], **kw) -> list[str]:
    """One completion text per prompt (judges, paraphrasing, eval); "" where the request failed.

    Use :func:`complete_full` to tell a failure from an empty answer.
    """
    return [r.get("text") or "" for r in complete_full(prompts, cfg, **kw)]
