"""The embedded model's building blocks: the character tokenizer and the seeded initialisation."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


def test_char_tokenizer_gives_every_character_its_own_token_and_round_trips(tmp_path):
    from transformers import AutoTokenizer

    from gradeset.models.charlevel import build_char_tokenizer

    build_char_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)  # what every loader sees
    for text in ["47-49=?", "50+x=77,x=?", "-100", "The answer is 72 because 79-7 equals 72.\n"]:
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text)  # one token per character, nothing added
        assert tok.decode(ids) == text
    assert len({tok.convert_tokens_to_ids(d) for d in "0123456789"}) == 10
    assert tok.eos_token_id != tok.pad_token_id and tok.chat_template is None  # plain-text prompts
    assert tok.decode(tok("12")["input_ids"] + [tok.eos_token_id], skip_special_tokens=True) == "12"


def test_init_model_is_deterministic_given_its_seed(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from gradeset.models.arith import init_model

    a = AutoModelForCausalLM.from_pretrained(init_model(tmp_path / "a", seed=3))
    b = AutoModelForCausalLM.from_pretrained(init_model(tmp_path / "b", seed=3))
    c = AutoModelForCausalLM.from_pretrained(init_model(tmp_path / "c", seed=4))
    pa, pb, pc = (dict(m.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)
    assert 0.9e6 < sum(p.numel() for p in a.parameters()) < 1.2e6


def test_sft_rows_use_the_integer_answer_as_the_completion():
    from gradeset.models.arith import sft_rows

    rows = list(sft_rows([{"prompt": "47-49=?", "answer": -2}, {"question": "50+x=77,x=?", "answer": "27"},
                          {"prompt": "no answer"}]))
    assert rows == [{"prompt": "47-49=?", "completion": "-2"}, {"prompt": "50+x=77,x=?", "completion": "27"}]
