"""Anthropic Messages API backend (the ``anthropic`` extra).

The SDK's own retries are switched off: the engine retries with the run's shared
back-off and rate limits, so a 429 pauses every request instead of each one alone.
The Messages API has no ``n``: one request per sample. Stage 2 of two-step generation
is an assistant prefill (the API continues a final assistant message).
"""

from __future__ import annotations

import os

from gradeset.errors import require
from gradeset.generate.backends.base import Backend, RequestError, Sample, classify_status
from gradeset.generate.limits import parse_retry_after
from gradeset.generate.prompts import Prompt
from gradeset.records import content_text

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


class AnthropicBackend(Backend):
    name = "anthropic"
    supports_n = False

    def __init__(self, cfg):
        self.cfg = cfg
        self.sdk = require("anthropic", "anthropic", "the anthropic backend")
        self.client = None

    def prompt_format(self) -> dict:
        return {"chat_template": "server"}  # the API formats the messages itself

    async def start(self) -> None:
        cfg = self.cfg
        key = os.environ.get(cfg.api_key_env or "ANTHROPIC_API_KEY") or "unset"
        kwargs = {"api_key": key, "max_retries": 0, "timeout": cfg.timeout}
        if cfg.base_url:
            kwargs["base_url"] = cfg.base_url
        if cfg.extra_headers:
            kwargs["default_headers"] = cfg.extra_headers
        self.client = self.sdk.AsyncAnthropic(**kwargs)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def generate(self, prompt: Prompt, n: int, max_tokens: int, *, prefill: str | None = None,
                       seed: int | None = None, request_id: str | None = None) -> list[Sample]:
        if self.client is None:
            await self.start()
        cfg, sdk = self.cfg, self.sdk
        messages = [{"role": m["role"], "content": content_text(m.get("content"))} for m in prompt.turns]
        if prefill is not None:
            # The API refuses a final assistant turn ending in whitespace.
            messages.append({"role": "assistant", "content": prefill.rstrip()})
        # Sampling knobs go in the body directly: recent SDKs no longer list them as
        # arguments, and the API accepts them either way.
        body = {"temperature": min(cfg.temperature, 1.0)}
        if cfg.top_p is not None:
            body["top_p"] = cfg.top_p
        if cfg.top_k is not None:
            body["top_k"] = cfg.top_k
        body.update(cfg.extra_body or {})
        kwargs = {"model": cfg.model, "max_tokens": max_tokens, "messages": messages, "extra_body": body}
        if prompt.system:
            kwargs["system"] = prompt.system
        if cfg.stop:
            kwargs["stop_sequences"] = cfg.stop
        try:
            msg = await self.client.messages.create(**kwargs)
        except sdk.APIStatusError as exc:
            status = exc.status_code
            raise RequestError(f"HTTP {status}: {exc.message}", status=status, retryable=classify_status(status),
                               retry_after=parse_retry_after(exc.response.headers)) from exc
        except sdk.APITimeoutError as exc:
            raise RequestError("timeout: no complete answer within the time limit") from exc
        except sdk.APIConnectionError as exc:
            raise RequestError(f"connection error: {exc}") from exc
        except (sdk.APIResponseValidationError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise RequestError(f"malformed response: {type(exc).__name__}: {exc}") from exc
        text = "".join(getattr(b, "text", "") for b in msg.content if getattr(b, "type", "") == "text")
        reasoning = "".join(getattr(b, "thinking", "") for b in msg.content if getattr(b, "type", "") == "thinking")
        if prefill is not None and prefill != prefill.rstrip():
            text = text.lstrip()  # the prefill lost its trailing whitespace; the engine re-adds it
        usage = msg.usage
        return [Sample(text=text, finish_reason=FINISH.get(msg.stop_reason, msg.stop_reason),
                       prompt_tokens=getattr(usage, "input_tokens", None),
                       completion_tokens=getattr(usage, "output_tokens", None), reasoning=reasoning or None)]
