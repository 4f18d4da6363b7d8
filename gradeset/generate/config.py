"""The generation config: one typed, picklable object shared by the CLI, steps and the API.

Strict (unknown keys are an error) because a misspelt ``temprature`` in a pipeline file
would otherwise silently sample at the default and waste a GPU-day.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

Backend = Literal["openai", "anthropic", "vllm", "transformers"]

# Parameters that change what a model returns: they key the request cache, so a change
# in any of them regenerates instead of reusing stale samples.
SAMPLING_FIELDS = (
    "backend", "model", "base_url", "endpoint", "temperature", "top_p", "top_k", "max_tokens",
    "system_prompt", "two_step", "stage2_tokens", "think_end", "mcq_options", "seed", "stop",
    "extra_body", "chat_template_kwargs",
)


class GenerateConfig(BaseModel):
    """How to sample: the model, sampling parameters, prompt building and throughput limits."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    backend: Backend = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str | None = None  # defaults per backend: OPENAI_API_KEY / ANTHROPIC_API_KEY
    endpoint: Literal["chat", "completions"] = "chat"

    n: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = None
    max_tokens: int = Field(2048, ge=1)
    stop: list[str] | None = None
    seed: int | None = None

    system_prompt: str | None = None
    two_step: bool = False
    stage2_tokens: int = Field(512, ge=1)
    think_end: str = "</think>"
    mcq_options: Literal["auto", "inline", "newlines", "none"] = "auto"
    chat_template_kwargs: dict[str, Any] | None = None  # e.g. {"enable_thinking": true}

    concurrency: int = Field(64, ge=1)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    timeout: float = Field(600.0, gt=0)
    retries: int = Field(6, ge=0)
    backoff_base: float = Field(1.0, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    transport: Literal["auto", "raw", "aiohttp", "httpx"] = "auto"  # HTTP client; auto = raw unless a proxy is set
    use_n: bool | None = None  # None: try n and fall back when the server refuses or ignores it

    batch_size: int = Field(64, ge=1)  # local backends: prompts per generate() call
    device: str | None = None  # transformers: "cpu", "cuda", ... (auto when None)
    dtype: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)  # vllm
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # vllm

    extra_body: dict[str, Any] | None = None  # passed through to the request body as-is
    extra_headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.two_step and self.stage2_tokens >= self.max_tokens:
            raise ValueError(
                f"two_step needs stage2_tokens ({self.stage2_tokens}) < max_tokens ({self.max_tokens}): "
                "stage 1 gets max_tokens - stage2_tokens")
        if self.backend in ("openai",) and not self.base_url:
            self.base_url = "https://api.openai.com/v1"
        return self

    @property
    def stage1_tokens(self) -> int:
        return self.max_tokens - self.stage2_tokens if self.two_step else self.max_tokens

    def sampling_fingerprint(self) -> str:
        """Hash of everything that changes the output (not throughput knobs like concurrency)."""
        data = {k: getattr(self, k) for k in SAMPLING_FIELDS}
        if self.backend in ("vllm", "transformers"):
            data["base_url"] = None
        raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(raw, digest_size=8).hexdigest()

    def response_meta(self) -> dict[str, Any]:
        """The per-response metadata every sample carries (seed 001's fields)."""
        return {"model": self.model, "backend": self.backend, "temperature": self.temperature,
                "top_p": self.top_p, "max_tokens": self.max_tokens}
