"""OpenAI-compatible HTTP backend: OpenAI, vLLM / SGLang / llama.cpp servers, Together, ...

``n`` samples are asked for in one request when the server honours ``n`` (vLLM does,
and then shares the prompt's KV cache across them); a server that rejects ``n`` or
answers with fewer choices switches the backend to one request per sample, and the
engine asks again for what is missing, so no sample is generated twice.

Stage 2 of two-step generation continues the assistant's partial answer. With
``--endpoint completions`` the plain prompt + partial text goes to ``/v1/completions``.
With the chat endpoint there are two ways, chosen by ``continuation``:

- ``chat``: the partial answer as a final assistant message with vLLM's
  ``continue_final_message`` / ``add_generation_prompt`` (vLLM and SGLang servers);
- ``completions``: the prompt rendered with the model's own chat template (from its
  tokenizer: ``tokenizer`` or the model folder) plus the partial answer, sent to
  ``/v1/completions``, which every OpenAI-compatible server has (seed 003 does the same
  offline with vLLM).

``auto`` tries ``chat`` and, when the server refuses those fields (``transformers serve``
answers 422 "Unexpected fields"), switches to ``completions`` for the rest of the run.
"""

from __future__ import annotations

import math
import os
from typing import Any

import orjson

from gradeset.generate.backends.base import Backend, RequestError, Sample, classify_status
from gradeset.generate.backends.http import make_transport
from gradeset.generate.limits import parse_retry_after
from gradeset.generate.prompts import Prompt, apply_chat_template, template_id

VLLM_CONTINUE_FIELDS = ("continue_final_message", "add_generation_prompt")


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    except (orjson.JSONDecodeError, AttributeError):
        return body[:300].decode("utf-8", "replace")


def refuses_continue_fields(status: int, message: str) -> bool:
    """True when a 400/422 says the server does not take vLLM's continuation fields."""
    if status not in (400, 422):
        return False
    m = message.lower()
    return (any(f in m for f in VLLM_CONTINUE_FIELDS) or "unexpected field" in m or "extra_forbidden" in m
            or "extra inputs are not permitted" in m or "unrecognized request argument" in m)


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
        self.completions_url = self.base_url + "/completions"
        self.continuation = cfg.continuation  # "auto" becomes "chat" or "completions" once known
        self._template_tok = None
        self._template_id: str | None = None
        self._template_error: RequestError | None = None

    def prompt_format(self) -> dict:
        # The chat endpoint formats messages with the server's own template; the raw
        # completions endpoint gets the messages joined as plain text.
        return {"chat_template": "server" if self.cfg.endpoint == "chat" else "none"}

    def _tokenizer(self):
        """The model's tokenizer for rendering the chat template locally (loaded once)."""
        if self._template_error is not None:
            raise self._template_error
        if self._template_tok is None:
            try:
                self._template_tok = self._load_tokenizer()
            except RequestError as exc:
                self._template_error = exc  # said once per sample, tried once per run
                raise
            self._template_id = template_id(self._template_tok)
        return self._template_tok

    def _load_tokenizer(self):
        source = self.cfg.tokenizer or self.cfg.model
        try:
            import transformers
        except ImportError as exc:
            raise RequestError("stage 2 via /v1/completions renders the chat template locally and needs "
                               "transformers: pip install 'gradeset[transformers]'", retryable=False) from exc
        try:
            return transformers.AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise RequestError(
                f"stage 2 via /v1/completions needs the model's chat template, but no tokenizer loads from "
                f"{source!r} ({type(exc).__name__}); pass --tokenizer PATH (a folder with the model's "
                "tokenizer files)", retryable=False) from exc

    def render(self, prompt: Prompt, prefill: str) -> str:
        """Chat-templated prompt + the partial answer, as the model itself would see it."""
        tok = self._tokenizer()
        text = apply_chat_template(tok, prompt, self.cfg.chat_template_kwargs)
        bos = getattr(tok, "bos_token", None)
        if bos and text.startswith(bos):
            # Servers tokenize a completions prompt with special tokens: the BOS would double.
            ids = tok("x")["input_ids"]
            if ids and ids[0] == tok.bos_token_id:
                text = text[len(bos):]
        return text + prefill

    async def start(self) -> None:
        self.transport = make_transport(self.cfg.concurrency, self.cfg.timeout,
                                        getattr(self.cfg, "transport", None))

    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close()
            self.transport = None

    def body(self, prompt: Prompt, n: int, max_tokens: int, prefill: str | None, seed: int | None,
             mode: str | None = None) -> dict:
        cfg = self.cfg
        body: dict[str, Any] = {"model": cfg.model, "max_tokens": max_tokens, "temperature": cfg.temperature}
        if mode == "completions" and prefill is not None:
            body["prompt"] = self.render(prompt, prefill)
        elif cfg.endpoint == "chat":
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
        mode = None
        if prefill is not None and self.cfg.endpoint == "chat":
            mode = "completions" if self.continuation == "completions" else "chat"
        url = self.completions_url if mode == "completions" else self.url
        payload = orjson.dumps(self.body(prompt, n, max_tokens, prefill, seed, mode))
        resp = await self.transport.post(url, payload, headers)
        if resp.status != 200:
            message = _error_message(resp.body)
            if mode == "chat" and refuses_continue_fields(resp.status, message):
                if self.continuation == "auto":
                    # Not a failure of this sample: the server wants the other way. Remember it.
                    self._tokenizer()  # a clear error now if the template cannot be rendered here
                    self.continuation = "completions"
                    return await self.generate(prompt, n, max_tokens, prefill=prefill, seed=seed,
                                               request_id=request_id)
                raise RequestError(
                    f"HTTP {resp.status}: {message} (the server does not take vLLM's continue_final_message; "
                    "use --continuation completions or auto)", status=resp.status, retryable=False)
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
        self._apportion(samples, usage if isinstance(usage, dict) else {})
        if mode is not None:
            for s in samples:
                s.extra["stage2_endpoint"] = mode
                if mode == "completions":
                    s.extra["stage2_chat_template"] = self._template_id
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
        ptoks = _count(usage.get("prompt_tokens"))
        ctoks = _count(usage.get("completion_tokens"))
        for s in samples:
            s.prompt_tokens = ptoks
            if len(samples) > 1:
                s.extra["request_samples"] = len(samples)  # the prompt was sent (and billed) once for all
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


def _count(value: Any) -> int | None:
    """A token count from a server's usage (hostile input: only non-negative integers count)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return int(value)
