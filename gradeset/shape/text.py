"""Text normalisation shared by dedup, decontamination and split keys.

Prompts that differ only in case, Unicode form or spacing around symbols ("2 + 3"
vs "2+3") are the same question; digits and operators are kept, because "79-7" and
"79-8" are different questions.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from gradeset.records import prompt_text

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def numbers(toks: list[str]) -> list[str]:
    """The number tokens of a tokenised text: what makes "79-7" and "79-8" two questions."""
    return [t for t in toks if t.isdigit()]


def normalize(text: str) -> str:
    return " ".join(tokens(text))


def prompt_key_text(group: dict, key: str = "prompt") -> str:
    """The normalised text a group is keyed by: its question, optionally with the answer."""
    text = normalize(prompt_text(group.get("prompt")))
    if key == "prompt+answer":
        ans: Any = group.get("answer")
        text += "\x1f" + ("" if ans is None else normalize(str(ans)))
    return text


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()
