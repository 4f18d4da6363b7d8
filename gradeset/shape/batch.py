"""Seed 001's batching strategies, with its bugs fixed.

* ``static`` — fixed-size batches in input order.
* ``dynamic`` — batches by token budget. Tokens come from a real tokenizer (a local
  folder with ``tokenizer.json`` or a transformers tokenizer) when given, else the
  seed's estimate of 1.3 tokens per word. The seed yields an empty batch when the
  first item alone exceeds the budget; here such an item gets a batch of its own and
  is counted as ``oversize``. ``sort_window`` sorts by length within windows of N
  items so batches pad less, while keeping the data roughly in order.
* ``stratified`` — batches that mix difficulty levels in proportion to what is left.
  The seed's loop emits a batch after every round (batches of 3, not batch_size);
  here every batch but the last has batch_size items.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gradeset.errors import GradesetError
from gradeset.io import batched
from gradeset.records import prompt_text, response_text
from gradeset.shape.scoring import ShapeError

STRATEGIES = ("static", "dynamic", "stratified")


def estimate_tokens(text: str) -> int:
    """The seed's rough count: words x 1.3 (rounded up)."""
    return math.ceil(len(text.split()) * 1.3)


def load_counter(tokenizer: str | os.PathLike | None) -> Callable[[str], int]:
    """A token counter: the tokenizer in a local folder (or tokenizer.json), else the estimate."""
    if not tokenizer:
        return estimate_tokens
    p = Path(tokenizer)
    if not p.exists():
        raise GradesetError(f"{tokenizer}: tokenizer folder or file not found (only local tokenizers are used)")
    from gradeset.errors import require

    if p.is_dir() and (p / "tokenizer_config.json").exists():
        # The trainer's own tokenizer class: it can differ from the raw tokenizer.json
        # (pre-tokenizer settings), and the budget must match what training sees.
        transformers = require("transformers", "train", "counting tokens with a real tokenizer")
        tok = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
    tj = p if p.is_file() else p / "tokenizer.json"
    if not tj.exists():
        raise GradesetError(f"{tokenizer}: no tokenizer_config.json or tokenizer.json there")
    tokenizers = require("tokenizers", "train", "counting tokens with a real tokenizer")
    raw = tokenizers.Tokenizer.from_file(str(tj))
    return lambda text: len(raw.encode(text, add_special_tokens=False).ids)


def group_tokens(group: dict, count: Callable[[str], int], include: str = "prompt") -> int:
    """Tokens of a group: its prompt, or prompt plus every response (what a GRPO step holds)."""
    n = count(prompt_text(group.get("prompt")))
    if include == "prompt+responses":
        n += sum(count(response_text(r)) for r in group.get("responses") or [])
    elif include != "prompt":
        raise ShapeError(f"token count must include 'prompt' or 'prompt+responses', got {include!r}")
    return n


def static_batches(items: Iterable[dict], batch_size: int) -> Iterator[list[dict]]:
    if batch_size < 1:
        raise ShapeError(f"batch size must be >= 1, got {batch_size}")
    yield from batched(items, batch_size)


def _windows(items: Iterable[tuple[dict, int]], window: int) -> Iterator[tuple[dict, int]]:
    if window <= 1:
        yield from items
        return
    buf: list[tuple[dict, int]] = []
    for it in items:
        buf.append(it)
        if len(buf) >= window:
            buf.sort(key=lambda t: t[1])
            yield from buf
            buf = []
    buf.sort(key=lambda t: t[1])
    yield from buf


def dynamic_batches(items: Iterable[tuple[dict, int]], max_tokens: int, sort_window: int = 0,
                    stats: dict | None = None) -> Iterator[list[tuple[dict, int]]]:
    """Batches of (item, tokens) whose token sum stays within max_tokens."""
    if max_tokens < 1:
        raise ShapeError(f"max tokens must be >= 1, got {max_tokens}")
    stats = {} if stats is None else stats
    batch: list[tuple[dict, int]] = []
    used = 0
    for item, n in _windows(items, sort_window):
        if n > max_tokens:
            stats["oversize"] = stats.get("oversize", 0) + 1
            if batch:
                yield batch
            yield [(item, n)]
            batch, used = [], 0
            continue
        if batch and used + n > max_tokens:
            yield batch
            batch, used = [], 0
        batch.append((item, n))
        used += n
    if batch:
        yield batch


def stratified_batches(items: Iterable[dict], batch_size: int, by: str = "difficulty",
                       default: str = "medium") -> Iterator[list[dict]]:
    """Batches mixing strata in proportion to what remains of each (largest remainder)."""
    if batch_size < 1:
        raise ShapeError(f"batch size must be >= 1, got {batch_size}")
    pools: dict[str, list[dict]] = {}
    for it in items:
        pools.setdefault(str(it.get(by) or default), []).append(it)
    order = sorted(pools, key=lambda k: (_LEVELS.get(k, 99), k))
    pos = dict.fromkeys(order, 0)
    remaining = sum(len(v) for v in pools.values())
    while remaining:
        size = min(batch_size, remaining)
        left = {k: len(pools[k]) - pos[k] for k in order}
        raw = {k: size * left[k] / remaining for k in order}
        take = {k: min(left[k], int(raw[k])) for k in order}
        short = size - sum(take.values())
        for k in sorted(order, key=lambda k: -(raw[k] - int(raw[k]))):
            if short <= 0:
                break
            if take[k] < left[k]:
                take[k] += 1
                short -= 1
        for k in order:  # rounding can leave a gap when small strata run dry
            while short > 0 and take[k] < left[k]:
                take[k] += 1
                short -= 1
        # interleave so each stratum is spread through the batch
        batch: list[dict] = []
        picks = {k: pools[k][pos[k]:pos[k] + take[k]] for k in order}
        while any(picks.values()):
            for k in order:
                if picks[k]:
                    batch.append(picks[k].pop(0))
        for k in order:
            pos[k] += take[k]
        remaining -= len(batch)
        yield batch


_LEVELS = {"easy": 0, "medium": 1, "hard": 2}
