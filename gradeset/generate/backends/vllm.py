"""Offline vLLM backend (seed 003's generator): one engine, big batches, chat template.

Needs a GPU and the ``vllm`` extra; without them it stops with a clear message.
"""

from __future__ import annotations

from gradeset.errors import GradesetError, require
from gradeset.generate.backends.base import LocalBackend, Sample
from gradeset.generate.prompts import Prompt, apply_chat_template, local_prompt_format
from gradeset.models import resolve_model_name


class VllmBackend(LocalBackend):
    name = "vllm"

    def __init__(self, cfg):
        self.cfg = cfg
        vllm = require("vllm", "vllm", "the offline vLLM backend")
        self.vllm = vllm
        kwargs = {"model": resolve_model_name(cfg.model), "tensor_parallel_size": cfg.tensor_parallel_size,
                  "gpu_memory_utilization": cfg.gpu_memory_utilization, "seed": cfg.seed or 0}
        if cfg.dtype:
            kwargs["dtype"] = cfg.dtype
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:  # CUDA missing, model folder wrong, out of memory...
            raise GradesetError(f"vLLM could not start {cfg.model!r}: {exc}") from exc
        self.tok = self.llm.get_tokenizer()
        # vLLM schedules its own continuous batching; big calls keep the GPU full.
        self.batch_size = max(cfg.batch_size, 1024)

    def prompt_format(self) -> dict:
        return local_prompt_format(self.tok, self.cfg.model)

    def generate_batch(self, items: list[tuple[Prompt, str | None]], n: int, max_tokens: int,
                       seed: int | None = None) -> list[list[Sample]]:
        cfg = self.cfg
        texts = [apply_chat_template(self.tok, p, cfg.chat_template_kwargs) + (prefill or "") for p, prefill in items]
        params = {"n": n, "temperature": cfg.temperature, "max_tokens": max_tokens}
        if cfg.top_p is not None:
            params["top_p"] = cfg.top_p
        if cfg.top_k is not None:
            params["top_k"] = cfg.top_k
        if cfg.stop:
            params["stop"] = cfg.stop
        sp = self.vllm.SamplingParams(**params)
        outs = self.llm.generate(texts, sp, use_tqdm=False)
        results = []
        for o in outs:
            ptoks = len(o.prompt_token_ids or [])
            results.append([Sample(text=c.text, finish_reason=c.finish_reason, prompt_tokens=ptoks,
                                   completion_tokens=len(c.token_ids)) for c in o.outputs])
        return results
