"""OpenAI-compatible HTTP backend: OpenAI, vLLM / SGLang / llama.cpp servers, Together, ...

``n`` samples are asked for in one request when the server honours ``n`` (vLLM does,
and then shares the prompt's KV cache across them); a server that rejects ``n`` or
answers with fewer choices switches the backend to one request per sample, and the
engine asks again for what is missing, so no sample is generated twice.

Stage 2 of two-step generation continues the assistant's partial answer:
``/v1/completions`` gets prompt + partial text; ``/v1/chat/completions`` gets the
partial answer as a final assistant message with ``continue_final_message`` (vLLM and
SGLang servers).
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from gradeset.generate.backends.base import Backend, RequestError, Sample, classify_status
from gradeset.generate.backends.http import make_transport
from gradeset.generate.limits import parse_retry_after
from gradeset.generate.prompts import Prompt


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    except (orjson.JSONDecodeError, AttributeError):
        return body[:300].decode("utf-8", "replace")


def _mentions_n(message: str) -> bool:
    m = message.lower()
    return "'n'" in m or '"n"' in m or " n " in f" {m} " or "n >" in m or "n must" in m or "param: n" in m


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, cfg):
        self.cfg = cfg
        self.base_url = (cfg.base_url or "https://api.openai.com/v1").rstrip("/")
        self.supports_n = cfg.use_n is not False
        key_env = cfg.api_key_env or "OPENAI_API_KEY"
        self.api_key = os.environ.get(key_env)
        self.headers = {"Content-Type": "application/json"}
        if self.api_key:
            self.headers["Authorization"] = f"Bearer {self.api_key}"
        self.headers.update(cfg.extra_headers or {})
        self.transport = None
        path = "/chat/completions" if cfg.endpoint == "chat" else "/completions"
        self.url = self.base_url + path

    async def start(self) -> None:
        self.transport = make_transport(self.cfg.concurrency, self.cfg.timeout,
                                        getattr(self.cfg, "transport", None))

    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close()
            self.transport = None

    def body(self, prompt: Prompt, n: int, max_tokens: int, prefill: str | None, seed: int | None) -> dict:
        cfg = self.cfg
        body: dict[str, Any] = {"model": cfg.model, "max_tokens": max_tokens, "temperature": cfg.temperature}
        if cfg.endpoint == "chat":
            messages = list(prompt.messages)
            if prefill is not None:
                messages.append({"role": "assistant", "content": prefill})
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            body["messages"] = messages
            if cfg.chat_template_kwargs:
                body["chat_template_kwargs"] = cfg.chat_template_kwargs
        else:
            body["prompt"] = prompt.plain_text() + (prefill or "")
        if n > 1:
            body["n"] = n
        if cfg.top_p is not None:
            body["top_p"] = cfg.top_p
        if cfg.top_k is not None:
            body["top_k"] = cfg.top_k
        if cfg.stop:
            body["stop"] = cfg.stop
        if seed is not None:
            body["seed"] = seed
        if cfg.extra_body:
            body.update(cfg.extra_body)
        return body

    async def generate(self, prompt: Prompt, n: int, max_tokens: int, *, prefill: str | None = None,
                       seed: int | None = None, request_id: str | None = None) -> list[Sample]:
        if self.transport is None:
            await self.start()
        if not self.supports_n:
            n = 1
        headers = self.headers
        if request_id:
            headers = {**headers, "X-Client-Request-Id": request_id}
        payload = orjson.dumps(self.body(prompt, n, max_tokens, prefill, seed))
        resp = await self.transport.post(self.url, payload, headers)
        if resp.status != 200:
            message = _error_message(resp.body)
            if resp.status in (400, 422) and n > 1 and _mentions_n(message):
                self.supports_n = False
                raise RequestError(f"HTTP {resp.status}: {message}", status=resp.status, n_unsupported=True)
            raise RequestError(f"HTTP {resp.status}: {message}", status=resp.status,
                               retryable=classify_status(resp.status),
                               retry_after=parse_retry_after(resp.headers))
        try:
            data = orjson.loads(resp.body)
            choices = data["choices"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise RequestError(f"malformed response: not the JSON of a completion ({exc})",
                               status=resp.status) from exc
        if not isinstance(choices, list) or not choices:
            raise RequestError("malformed response: the answer has no choices", status=resp.status)
        usage = data.get("usage") or {}
        samples = [self._sample(c) for c in sorted(choices, key=lambda c: c.get("index", 0))]
        if n > 1 and len(samples) < n:
            self.supports_n = False  # the server ignored n: ask once per sample from now on
        self._apportion(samples, usage)
        return samples[:n]

    def _sample(self, choice: dict) -> Sample:
        if "message" in choice:
            msg = choice.get("message") or {}
            text = msg.get("content")
            reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        else:
            text = choice.get("text")
            reasoning = None
        return Sample(text="" if text is None else str(text), finish_reason=choice.get("finish_reason"),
                      reasoning=reasoning)

    @staticmethod
    def _apportion(samples: list[Sample], usage: dict) -> None:
        """Per-sample token counts from the request's usage (shared when ``n`` > 1)."""
        if not samples:
            return
        ptoks = usage.get("prompt_tokens")
        ctoks = usage.get("completion_tokens")
        for s in samples:
            s.prompt_tokens = ptoks
        if ctoks is None:
            return
        if len(samples) == 1:
            samples[0].completion_tokens = int(ctoks)
            return
        lengths = [max(1, len(s.text)) for s in samples]
        total = sum(lengths)
        for s, ln in zip(samples, lengths):
            s.completion_tokens = round(ctoks * ln / total)
            s.extra["tokens_estimated"] = True
