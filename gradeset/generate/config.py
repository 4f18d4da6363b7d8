"""The generation config: one typed, picklable object shared by the CLI, steps and the API.

Strict (unknown keys are an error) because a misspelt ``temprature`` in a pipeline file
would otherwise silently sample at the default and waste a GPU-day.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

OPENAI_URL = "https://api.openai.com/v1"

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

    # Two-step stage 2 on OpenAI-compatible servers: "chat" continues the assistant message
    # with vLLM's continue_final_message; "completions" sends the chat-templated prompt plus
    # the partial answer to /v1/completions (needs the model's tokenizer); "auto" tries chat
    # and switches to completions for good when the server refuses those fields (400/422).
    continuation: Literal["auto", "chat", "completions"] = "auto"
    tokenizer: str | None = None  # tokenizer folder for the completions continuation (default: model)

    # When a run counts as failed: more than this share of the samples it tried failed.
    max_failed: float = Field(0.1, ge=0.0, le=1.0)

    # Token accounting and budget stops (per invocation; a re-run resumes with a fresh budget).
    price_in_per_mtok: float | None = Field(None, ge=0)  # price per million prompt tokens
    price_out_per_mtok: float | None = Field(None, ge=0)  # price per million completion tokens
    max_cost: float | None = Field(None, gt=0)
    max_total_tokens: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.two_step and self.stage2_tokens >= self.max_tokens:
            raise ValueError(
                f"two_step needs stage2_tokens ({self.stage2_tokens}) < max_tokens ({self.max_tokens}): "
                "stage 1 gets max_tokens - stage2_tokens")
        if self.backend in ("openai",) and not self.base_url:
            self.base_url = OPENAI_URL
        if self.max_cost is not None and (self.price_in_per_mtok is None or self.price_out_per_mtok is None):
            raise ValueError("max_cost needs prices: price_in_per_mtok and price_out_per_mtok (--price-per-mtok)")
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
        """What every sample records about how it was asked for.

        Enough to sample the same way again and to train in the same prompt format: a
        chat model trained on prompts without the system prompt it was sampled with sees
        a different task. ``chat_template`` is filled in by the backend (see
        ``Backend.prompt_format``).
        """
        return {"model": self.model, "backend": self.backend, "temperature": self.temperature,
                "top_p": self.top_p, "top_k": self.top_k, "max_tokens": self.max_tokens, "seed": self.seed,
                "n": self.n, "system_prompt": self.system_prompt}
