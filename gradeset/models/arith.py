"""The embedded arithmetic model's data format and architecture, in one place.

The prompt format is plain text: the question exactly as seed 002 writes it
(``47-49=?``, ``50+x=77,x=?``) and the completion is the integer answer followed by the
end-of-sequence token. The tokenizer has no chat template, so the transformers and vLLM
backends, TRL's SFT / DPO / GRPO trainers and ``gradeset eval`` all feed the model the
same characters; tests/test_learning.py fails if one of them starts to differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Calibrated outside the project: about 1M parameters learn 2-operand arithmetic to
# roughly 45% greedy accuracy in ~850 SFT steps, leaving room for RL to show a gain.
ARCH: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 64,
    "tie_word_embeddings": True,
}
MAX_ANSWER_TOKENS = 6  # "-100" plus end of sequence, with a little slack


def completion_of(answer: Any) -> str:
    """The text the model learns to write after a question: the integer, nothing else."""
    return str(answer).strip()


def sft_rows(groups: Iterable[dict]) -> Iterator[dict]:
    """Groups with a gold ``answer`` -> TRL prompt/completion rows in the model's format."""
    for g in groups:
        answer = g.get("answer")
        prompt = g.get("prompt") if g.get("prompt") is not None else g.get("question")
        if answer is None or not isinstance(prompt, str):
            continue
        yield {"prompt": prompt, "completion": completion_of(answer)}


def init_model(folder: str | Path, seed: int = 0) -> Path:
    """A randomly initialised Qwen2 with the character tokenizer, written to folder.

    ``gradeset train sft`` then trains it from scratch like any local model folder.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from gradeset.models.charlevel import build_char_tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_char_tokenizer(folder)
    config = Qwen2Config(vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         bos_token_id=None, **ARCH)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(folder))
    return folder
