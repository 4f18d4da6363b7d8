"""Local transformers backend: a model folder on CPU or GPU, batched ``generate``.

Prompts go through the tokenizer's chat template (seed 003), or are fed as plain text
when the tokenizer has none (base models, the embedded ``gradeset:arith-tiny``), and are
left-padded so a batch of different lengths generates together. Token counts and finish reasons come
from the generated ids themselves: ``stop`` when the end-of-sequence token appeared,
``length`` when the budget ran out.
"""

from __future__ import annotations

from gradeset.errors import GradesetError, require
from gradeset.generate.backends.base import LocalBackend, Sample
from gradeset.generate.prompts import Prompt, apply_chat_template, local_prompt_format
from gradeset.models import resolve_model_name


class TransformersBackend(LocalBackend):
    name = "transformers"

    def __init__(self, cfg):
        self.cfg = cfg
        torch = require("torch", "transformers", "the transformers backend")
        transformers = require("transformers", "transformers", "the transformers backend")
        self.torch = torch
        path = resolve_model_name(cfg.model)  # gradeset:NAME -> the packaged folder
        try:
            self.tok = transformers.AutoTokenizer.from_pretrained(path)
            kwargs = {}
            if cfg.dtype:
                # transformers renamed torch_dtype to dtype in 4.56
                major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
                name = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
                dtype = getattr(torch, cfg.dtype, None)
                if not isinstance(dtype, torch.dtype):
                    raise GradesetError(f"unknown dtype {cfg.dtype!r}; use e.g. bfloat16, float16, float32")
                kwargs[name] = dtype
            self.model = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise GradesetError(f"cannot load model {cfg.model!r} with transformers: {exc}") from exc
        device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = device
        self.model.to(device).eval()
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    def render(self, prompt: Prompt, prefill: str | None) -> str:
        return apply_chat_template(self.tok, prompt, self.cfg.chat_template_kwargs) + (prefill or "")

    def prompt_format(self) -> dict:
        return local_prompt_format(self.tok, self.cfg.model)

    def generate_batch(self, items: list[tuple[Prompt, str | None]], n: int, max_tokens: int,
                       seed: int | None = None) -> list[list[Sample]]:
        torch, cfg, tok = self.torch, self.cfg, self.tok
        texts = [self.render(p, prefill) for p, prefill in items]
        templated = bool(getattr(tok, "chat_template", None))
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not templated).to(self.device)
        gen = {"max_new_tokens": max_tokens, "num_return_sequences": n, "pad_token_id": tok.pad_token_id}
        if cfg.temperature > 0:
            gen.update(do_sample=True, temperature=cfg.temperature)
            if cfg.top_p is not None:
                gen["top_p"] = cfg.top_p
            if cfg.top_k is not None:
                gen["top_k"] = cfg.top_k
        else:
            gen["do_sample"] = False
        if cfg.stop:
            gen.update(stop_strings=cfg.stop, tokenizer=tok)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(**enc, **gen)
        width = enc["input_ids"].shape[1]
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        results: list[list[Sample]] = []
        for i in range(len(items)):
            samples = []
            for j in range(n):
                ids = out[i * n + j, width:].tolist()
                cut = next((k for k, t in enumerate(ids) if t in self.eos_ids), None)
                if cut is not None:
                    ids, finish = ids[:cut + 1], "stop"
                else:
                    while ids and ids[-1] == tok.pad_token_id and tok.pad_token_id not in self.eos_ids:
                        ids.pop()
                    finish = "length" if len(ids) >= max_tokens else "stop"
                text = tok.decode(ids, skip_special_tokens=True)
                samples.append(Sample(text=text, finish_reason=finish, prompt_tokens=int(prompt_lens[i]),
                                      completion_tokens=len(ids)))
            results.append(samples)
        return results

    def close(self) -> None:
        return None
