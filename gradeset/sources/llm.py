"""The model behind the model-driven sources (questions from documents, paraphrases).

Sources take a plain ``complete(prompts) -> texts`` function so that they can be tested
with any callable; this module builds that function from command-line flags on top of
``gradeset.generate.complete`` (imported lazily: it may pull in HTTP clients or vLLM).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gradeset.errors import GradesetError

Complete = Callable[[list[Any]], list[str]]


class RequestFailed(str):
    """The reply of a request that failed after its retries: an empty string that says why.

    Being a ``str`` keeps every parser working; sources check for it to give the real
    reason ("request failed: HTTP 500 ...") instead of "empty reply".
    """

    error: str = ""

    def __new__(cls, error: str):
        obj = super().__new__(cls, "")
        obj.error = error
        return obj


def failure_reason(reply: Any) -> str | None:
    """"request failed: ..." for a failed request, else None."""
    if isinstance(reply, RequestFailed):
        return f"request failed: {reply.error or 'unknown error'}"
    return None


def add_backend_args(p: argparse.ArgumentParser, *, temperature: float = 0.7, max_tokens: int = 1024) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--backend", required=True, help="openai, anthropic, vllm or transformers")
    g.add_argument("--model", required=True, help="model name (or local folder for vllm/transformers)")
    g.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    g.add_argument("--temperature", type=float, default=temperature, help=f"default {temperature}")
    g.add_argument("--max-tokens", type=int, default=max_tokens, help=f"reply token limit (default {max_tokens})")
    g.add_argument("--concurrency", type=int, help="requests in flight (HTTP backends)")
    g.add_argument("--timeout", type=float, help="seconds per request")
    g.add_argument("--retries", type=int, help="retries per request")
    g.add_argument("--seed", type=int, default=0, help="sampling seed where the backend takes one")
    g.add_argument("--cache", help="request cache (default OUT.gencache.jsonl): a re-run reuses finished replies")
    g.add_argument("--no-cache", action="store_true", help="do not keep or reuse a request cache")


def config_from_args(args: argparse.Namespace) -> Any:
    try:
        from gradeset.generate import GenerateConfig
    except ImportError as exc:
        raise GradesetError(f"the generation backends (gradeset.generate) are not available: {exc}") from exc
    fields: dict[str, Any] = {"backend": args.backend, "model": args.model, "n": 1,
                              "temperature": args.temperature, "max_tokens": args.max_tokens}
    for name in ("base_url", "concurrency", "timeout", "retries", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    try:
        return GenerateConfig(**fields)
    except Exception as exc:  # pydantic ValidationError: a bad flag value
        raise GradesetError(f"bad model options: {exc}") from exc


def complete_from_args(args: argparse.Namespace, out: str | None = None) -> Complete:
    """``complete(prompts) -> texts`` for the backend the flags name.

    Replies are cached beside OUT (as ``gradeset generate`` does), so an interrupted or
    repeated run asks the model only for what it has not answered yet.
    """
    cfg = config_from_args(args)
    cache_path = None
    if not getattr(args, "no_cache", False):
        cache_path = getattr(args, "cache", None)
        if cache_path is None and out is not None:
            cache_path = str(out) + ".gencache.jsonl"

    def run(prompts: list[Any]) -> list[str]:
        return complete_texts(prompts, cfg, cache_path=cache_path)

    return run


def complete_texts(prompts: list[Any], cfg: Any, cache_path: str | None = None) -> list[str]:
    """One text per prompt; a failed request gives a :class:`RequestFailed` (an empty str)."""
    try:
        from gradeset.generate import complete_full
    except ImportError as exc:
        raise GradesetError(f"the generation backends (gradeset.generate) are not available: {exc}") from exc
    out: list[str] = []
    for r in complete_full(prompts, cfg, cache_path=cache_path):
        if r.get("failed"):
            out.append(RequestFailed(str((r.get("meta") or {}).get("error") or "")))
        else:
            out.append(r.get("text") or "")
    return out
