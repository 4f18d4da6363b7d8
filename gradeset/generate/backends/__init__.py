"""Model backends. HTTP backends are async (one request per call); local ones are batched.

``get_backend(cfg)`` imports lazily so that ``import gradeset.generate`` never imports
torch, vLLM or the Anthropic SDK.
"""

from __future__ import annotations

from gradeset.generate.backends.base import Backend, LocalBackend, RequestError, Sample

__all__ = ["Backend", "LocalBackend", "RequestError", "Sample", "get_backend"]


def get_backend(cfg):
    if cfg.backend == "openai":
        from gradeset.generate.backends.openai import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "anthropic":
        from gradeset.generate.backends.anthropic import AnthropicBackend

        return AnthropicBackend(cfg)
    if cfg.backend == "transformers":
        from gradeset.generate.backends.hf import TransformersBackend

        return TransformersBackend(cfg)
    if cfg.backend == "vllm":
        from gradeset.generate.backends.vllm import VllmBackend

        return VllmBackend(cfg)
    from gradeset.errors import GradesetError

    raise GradesetError(f"unknown backend {cfg.backend!r}; known: openai, anthropic, vllm, transformers")
