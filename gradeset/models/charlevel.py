"""A character-level tokenizer built locally with ``tokenizers`` (no downloads).

Why character level: the embedded arithmetic model must see every digit on its own, or
``47`` and ``74`` become unrelated tokens and a 1M-parameter model cannot learn carries.
The vocabulary is printable ASCII plus three specials, so any prompt encodes; no chat
template, so prompts are fed as plain text by every backend and trainer alike.
"""

from __future__ import annotations

import string
from pathlib import Path

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]  # digits, letters, punctuation, space, \n


def build_char_tokenizer(folder: str | Path | None = None):
    """A ``PreTrainedTokenizerFast`` with one token per character; saved to folder when given."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *CHARS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   bos_token=None, clean_up_tokenization_spaces=False)
    if folder is not None:
        fast.save_pretrained(str(folder))
    return fast
