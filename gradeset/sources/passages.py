"""Blocks -> passages: sections split by heading, paragraphs packed within a token budget.

A passage never crosses a heading (a question about one section should not need
another), packs whole paragraphs while they fit, falls back to sentences and then to
word windows for paragraphs longer than the budget, and repeats up to ``overlap``
tokens of the previous passage's tail so that a fact cut at a boundary is whole in one
of the two. Token counts are an estimate (words and punctuation marks) unless a
tokenizer's ``count`` function is passed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from gradeset.sources.documents import Block

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])[\"'\u201d)]*\s+(?=[\"'\u201c(]?[A-Z0-9])")

Counter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """Words and punctuation marks: close to (slightly under) BPE counts for English."""
    return len(_TOKEN.findall(text))


def content_id(text: str) -> str:
    """16 hex digits of the passage text's hash: the same text has the same id everywhere."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class _Unit:
    text: str
    page: int | None
    tokens: int
    joiner: str  # what separates it from the previous unit: "\n\n" between paragraphs, " " inside


def _sections(blocks: Iterable[Block]) -> Iterator[tuple[str | None, list[Block]]]:
    heading: str | None = None
    current: list[Block] = []
    for b in blocks:
        if b.is_heading:
            if current:
                yield heading, current
            heading, current = b.text, []
        else:
            current.append(b)
    if current:
        yield heading, current


def _units(block: Block, max_tokens: int, count: Counter) -> list[_Unit]:
    """A paragraph as one unit, or as sentences / word windows when it is over budget."""
    n = count(block.text)
    if n <= max_tokens:
        return [_Unit(block.text, block.page, n, "\n\n")]
    out: list[_Unit] = []
    first = True
    for sent in _SENTENCE.split(block.text):
        sent = sent.strip()
        if not sent:
            continue
        k = count(sent)
        if k <= max_tokens:
            out.append(_Unit(sent, block.page, k, "\n\n" if first else " "))
            first = False
            continue
        words = sent.split()
        start = 0
        while start < len(words):
            end = start + 1
            while end < len(words) and count(" ".join(words[start:end + 1])) <= max_tokens:
                end += 1
            piece = " ".join(words[start:end])
            out.append(_Unit(piece, block.page, count(piece), "\n\n" if first else " "))
            first = False
            start = end
    return out


def _render(units: list[_Unit]) -> str:
    text = ""
    for i, u in enumerate(units):
        text = u.text if i == 0 else text + u.joiner + u.text
    return text


def split_passages(blocks: Iterable[Block], *, max_tokens: int = 400, overlap: int = 50,
                   count: Counter = estimate_tokens) -> Iterator[dict]:
    """Passages (text, page, page_end, heading, tokens) of one document's blocks, in order."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if overlap < 0 or overlap >= max_tokens:
        raise ValueError("overlap must be >= 0 and smaller than max_tokens")
    for heading, section in _sections(blocks):
        units: list[_Unit] = []
        for b in section:
            units.extend(_units(b, max_tokens, count))
        current: list[_Unit] = []
        fresh = 0  # units in `current` that are not overlap carried from the previous passage
        for u in units:
            total = sum(x.tokens for x in current) + u.tokens
            if current and total > max_tokens and fresh:
                yield _passage(current, heading, count)
                current = _tail(current, overlap, max_tokens - u.tokens, count)
                fresh = 0
            elif current and total > max_tokens:
                current = []  # only overlap in it and the new unit does not fit with it
            current.append(u)
            fresh += 1
        if current and fresh:
            yield _passage(current, heading, count)


def _tail(units: list[_Unit], overlap: int, room: int, _count: Counter = estimate_tokens) -> list[_Unit]:
    """The last units of a passage whose tokens total at most min(overlap, room)."""
    budget = min(overlap, room)
    out: list[_Unit] = []
    used = 0
    for u in reversed(units):
        if used + u.tokens > budget:
            break
        out.insert(0, u)
        used += u.tokens
    if not out and units and budget > 0:
        # the last paragraph is longer than the overlap: repeat its last sentences, else words
        last = units[-1]
        piece = ""
        for sent in reversed([s for s in _SENTENCE.split(last.text) if s.strip()]):
            cand = f"{sent.strip()} {piece}".strip()
            if _count(cand) > budget:
                break
            piece = cand
        if not piece:
            words = last.text.split()
            k = 0
            while k < len(words) and _count(" ".join(words[len(words) - k - 1:])) <= budget:
                k += 1
            piece = " ".join(words[len(words) - k:]) if k else ""
        if piece:
            out = [_Unit(piece, last.page, _count(piece), "\n\n")]
    if out:
        out[0] = _Unit(out[0].text, out[0].page, out[0].tokens, "\n\n")
    return out


def _passage(units: list[_Unit], heading: str | None, count: Counter) -> dict:
    text = _render(units)
    pages = [u.page for u in units if u.page is not None]
    return {
        "text": text,
        "page": pages[0] if pages else None,
        "page_end": pages[-1] if pages else None,
        "heading": heading,
        "tokens": count(text),
    }


def document_passages(path: str, blocks: list[Block], *, max_tokens: int = 400, overlap: int = 50,
                      min_tokens: int = 1, count: Counter = estimate_tokens) -> tuple[list[dict], int]:
    """Passage rows of one file (with file, index and content id) and how many were too short."""
    rows = []
    short = 0
    for p in split_passages(blocks, max_tokens=max_tokens, overlap=overlap, count=count):
        if p["tokens"] < min_tokens:
            short += 1
            continue
        rows.append({"id": content_id(p["text"]), "file": str(path), "index": len(rows), **p})
    return rows, short


def tokenizer_counter(name_or_path: str) -> Counter:
    """Exact token counts with a Hugging Face tokenizer (local folder or cached name)."""
    from gradeset.errors import GradesetError, require

    transformers = require("transformers", "train", "counting tokens with a tokenizer")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name_or_path)
    except Exception as exc:
        raise GradesetError(f"cannot load tokenizer {name_or_path!r}: {exc}") from exc
    return lambda text: len(tok.encode(text, add_special_tokens=False))
