"""Augmentation (seed 001): paraphrased prompts and arithmetic difficulty variants.

Paraphrases come from a model (any ``complete(prompts) -> texts`` function); they keep
the gold answer, so a paraphrase that drops or changes a number is rejected by default
(the answer would silently be wrong). Every new group links back with ``original_id``
and says how it was made in ``augmentation``.

Arithmetic variants are made by rebuilding the parsed question (``arith_parse``) with
new numbers or one more operation and recomputing the answer exactly; the rendered
question is parsed again and solved as a check before it is written.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import Any

from gradeset.records import ensure_id, is_messages, prompt_text
from gradeset.sources.arith_parse import (
    Bin,
    Neg,
    Node,
    Num,
    ParseError,
    Question,
    Var,
    count_var,
    evaluate,
    format_number,
    parse_question,
    render_question,
)
from gradeset.sources.llm import failure_reason

Complete = Callable[[list[Any]], list[str]]

HARDER_KINDS = ("bigger-numbers", "more-steps")
EASIER_KINDS = ("smaller-numbers",)
KINDS = HARDER_KINDS + EASIER_KINDS
_DROP_ON_COPY = ("id", "responses", "reference", "prompt", "answer", "difficulty", "original_id", "augmentation")


def derived_group(original: dict, prompt_text_new: str, answer: Any, **fields: Any) -> dict:
    """A new group made from original: same metadata, new prompt, link to the original."""
    group = {k: v for k, v in original.items() if k not in _DROP_ON_COPY}
    prompt = original.get("prompt")
    if is_messages(prompt):
        msgs = [dict(m) for m in prompt]
        users = [i for i, m in enumerate(msgs) if m.get("role") == "user"]
        msgs[users[-1] if users else -1]["content"] = prompt_text_new
        group["prompt"] = msgs
    else:
        group["prompt"] = prompt_text_new
    group["answer"] = answer
    group["original_id"] = ensure_id(original)["id"]
    group.update(fields)
    group["responses"] = []
    return ensure_id(group)


# ---------------------------------------------------------------- paraphrase

PARAPHRASE_TEMPLATE = (
    "Rewrite the following problem in different words. Keep every number, quantity and name "
    "exactly, keep the same answer and the same difficulty, and do not solve it. Reply with the "
    "rewritten problem only.\n\nProblem:\n{prompt}"
)

_NUM = re.compile(r"\d+(?:\.\d+)?")
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:here(?: is|'s)[^:\n]*|paraphrase[d]?(?: problem| version)?|rewritten"
                    r"(?: problem| version)?|problem|question)\s*:?(?:\*\*)?\s*:?\s*\n?", re.I)


def clean_paraphrase(reply: str | None) -> str:
    """The rewritten problem out of a model reply: no think block, fences, labels or quotes."""
    if not reply:
        return ""
    text = re.sub(r"<think>.*?</think>", "", reply, flags=re.S).strip()
    if "</think>" in text:
        text = text.split("</think>")[-1].strip()
    fence = re.fullmatch(r"```[\w-]*\n(.*?)\n?```", text, flags=re.S)
    if fence:
        text = fence.group(1).strip()
    for _ in range(2):
        text = _LABEL.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'\u201c":
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == "\u201c" and text[-1] == "\u201d":
        text = text[1:-1].strip()
    return text


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def check_paraphrase(original: str, new: str, check_numbers: bool = True) -> str | None:
    """Why a paraphrase is unusable, or None when it is fine."""
    if not new:
        return "empty paraphrase"
    if _norm(new) == _norm(original):
        return "paraphrase is the same as the original"
    if len(new) > 4 * len(original) + 400:
        return "paraphrase is far longer than the original (did the model solve it?)"
    if check_numbers:
        have = _NUM.findall(new)
        missing = []
        for n in _NUM.findall(original):
            if n in have:
                have.remove(n)
            else:
                missing.append(n)
        if missing:
            return f"paraphrase lost or changed number(s) {', '.join(missing[:5])}"
    return None


def paraphrase_groups(groups: Iterable[dict], complete: Complete, *, per_prompt: int = 1,
                      check_numbers: bool = True, template: str = PARAPHRASE_TEMPLATE,
                      batch_size: int = 64) -> Iterator[tuple[dict, dict | None, str | None, str | None]]:
    """(original, paraphrased group or None, reason when None, raw reply) for each request.

    Requests go to ``complete`` in batches; a duplicate of an earlier paraphrase of the
    same prompt is reported with reason "duplicate paraphrase".
    """
    batch: list[dict] = []

    def flush() -> Iterator[tuple[dict, dict | None, str | None, str | None]]:
        prompts = []
        for g in batch:
            base = template.format(prompt=prompt_text(g.get("prompt")))
            if per_prompt == 1:
                prompts.append(base)
            else:  # distinct requests: identical ones would share one cached reply
                prompts.extend(f"{base}\n\n(Rewrite {k + 1} of {per_prompt}: word it differently from the "
                               "other rewrites.)" for k in range(per_prompt))
        replies = complete(prompts) if prompts else []
        if len(replies) != len(prompts):
            raise RuntimeError(f"backend returned {len(replies)} replies for {len(prompts)} prompts")
        for gi, g in enumerate(batch):
            original = prompt_text(g.get("prompt"))
            seen: set[str] = set()
            for k in range(per_prompt):
                raw = replies[gi * per_prompt + k]
                text = clean_paraphrase(raw if isinstance(raw, str) else None)
                reason = failure_reason(raw) or check_paraphrase(original, text, check_numbers)
                if reason is None and _norm(text) in seen:
                    reason = "duplicate paraphrase"
                if reason is not None:
                    yield g, None, reason, raw if isinstance(raw, str) else None
                    continue
                seen.add(_norm(text))
                yield g, derived_group(g, text, g.get("answer"), augmentation="paraphrase",
                                       **({"difficulty": g["difficulty"]} if g.get("difficulty") else {})), None, raw

    for g in groups:
        batch.append(g)
        if len(batch) >= batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


# ---------------------------------------------------------------- arithmetic variants


def _literals(node: Node) -> list[int]:
    if isinstance(node, Num):
        return [node.value]
    if isinstance(node, Var):
        return []
    if isinstance(node, Neg):
        return _literals(node.operand)  # type: ignore[arg-type]
    return _literals(node.left) + _literals(node.right)  # type: ignore[union-attr]


class _Gen:
    """Random integers for literals and x in [lo, hi], with exact divisions."""

    def __init__(self, rng: random.Random, lo: int, hi: int):
        self.rng, self.lo, self.hi = rng, lo, hi
        self.x: int | None = None

    def draw(self) -> int:
        return self.rng.randint(self.lo, self.hi)

    def quotient(self) -> int:
        """The exact quotient of a division: not 1 (trivial), a tenth of the range at most."""
        if self.hi >= 20:
            return self.rng.randint(2, max(2, self.hi // 10))
        return self.rng.randint(max(1, min(2, self.hi)), self.hi)

    def build(self, node: Node, want_multiple_of: int | None = None) -> tuple[Node, int]:
        """A copy of node with new numbers and its integer value (a multiple when asked)."""
        for _ in range(200):
            new, value = self._build(node, want_multiple_of)
            if want_multiple_of is None or value % want_multiple_of == 0:
                return new, value
        raise ParseError("could not find numbers that divide exactly")

    def _build(self, node: Node, m: int | None) -> tuple[Node, int]:
        if isinstance(node, Num):
            if m is not None:
                k = self.quotient()
                return Num(k * m), k * m
            v = self.draw()
            return Num(v), v
        if isinstance(node, Var):
            if m is not None:
                self.x = self.quotient() * m
            else:
                self.x = self.draw()
            return Var(), self.x
        if isinstance(node, Neg):
            inner, v = self.build(node.operand, m)  # type: ignore[arg-type]
            return Neg(inner), -v
        assert isinstance(node, Bin)
        if node.op == "/":
            right, d = self.build(node.right)  # type: ignore[arg-type]
            tries = 0
            while d == 0:
                tries += 1
                if tries > 50:
                    raise ParseError("divisor is always 0")
                right, d = self.build(node.right)  # type: ignore[arg-type]
            left, n = self.build(node.left, abs(d))  # type: ignore[arg-type]
            return Bin("/", left, right), n // d
        left, a = self.build(node.left)  # type: ignore[arg-type]
        right, b = self.build(node.right)  # type: ignore[arg-type]
        v = a + b if node.op == "+" else a - b if node.op == "-" else a * b
        return Bin(node.op, left, right), v


def _renumber(q: Question, rng: random.Random, lo: int, hi: int) -> tuple[Question, Fraction]:
    """Same shape, new numbers in [lo, hi]; the result literal is recomputed."""
    gen = _Gen(rng, lo, hi)
    if q.rhs is None:
        lhs, value = gen.build(q.lhs)
        return Question(q.prefix, lhs, None, q.suffix), Fraction(value)
    lhs_node, rhs_node, swapped = q.lhs, q.rhs, False
    if count_var(rhs_node):
        lhs_node, rhs_node, swapped = rhs_node, lhs_node, True
    if not isinstance(rhs_node, Num | Neg) or count_var(rhs_node):
        raise ParseError("the side without x must be a single number for new numbers")
    new_lhs, value = gen.build(lhs_node)
    assert gen.x is not None
    result: Node = Num(value) if value >= 0 else Neg(Num(-value))
    if swapped:
        return Question(q.prefix, result, new_lhs, q.suffix), Fraction(gen.x)
    return Question(q.prefix, new_lhs, result, q.suffix), Fraction(gen.x)


def _magnitude(q: Question) -> int:
    nums = [abs(v) for v in _literals(q.lhs) + (_literals(q.rhs) if q.rhs is not None else [])]
    with contextlib.suppress(ParseError, ZeroDivisionError, ValueError):
        nums.append(abs(int(q.answer)))
    return max(nums) if nums else 10


def _more_steps(q: Question, rng: random.Random) -> tuple[Question, Fraction]:
    """One more operation on the side with the work; an equation keeps its solution."""
    hi = max(9, min(_magnitude(q), 100))
    c = rng.randint(2, hi)
    op = rng.choice(["+", "-", "*"])
    if q.rhs is None:
        new = Bin(op, q.lhs, Num(c))
        return Question(q.prefix, new, None, q.suffix), evaluate(new)
    x = q.answer
    side, other, swapped = q.lhs, q.rhs, False
    if count_var(other):
        side, other, swapped = other, side, True
    if not isinstance(other, Num | Neg) or count_var(other):
        raise ParseError("the side without x must be a single number for more steps")
    new_side = Bin(op, side, Num(c))
    value = evaluate(new_side, x)
    if value.denominator != 1:
        raise ParseError("the extra step does not give a whole number")
    v = int(value)
    result: Node = Num(v) if v >= 0 else Neg(Num(-v))
    if swapped:
        return Question(q.prefix, result, new_side, q.suffix), x
    return Question(q.prefix, new_side, result, q.suffix), x


def make_variant(q: Question, kind: str, rng: random.Random) -> tuple[Question, Fraction]:
    """A variant of q of one kind (or several joined by '+', applied in order)."""
    out, ans = q, q.answer
    for part in kind.split("+"):
        if part == "bigger-numbers":
            digits = len(str(_magnitude(out)))
            out, ans = _renumber(out, rng, 10 ** digits, 10 ** (digits + 1) - 1)
        elif part == "smaller-numbers":
            if _magnitude(out) < 10:
                raise ParseError("numbers are already single digits")
            out, ans = _renumber(out, rng, 1, 9)
        elif part == "more-steps":
            out, ans = _more_steps(out, rng)
        else:
            raise ParseError(f"unknown variant kind {part!r}; known: {', '.join(KINDS)}")
    return out, ans


def _same_answer(gold: Any, value: Fraction) -> bool:
    try:
        return Fraction(str(gold).strip()) == value
    except (ValueError, ZeroDivisionError):
        return False


def arithmetic_variants(group: dict, kinds: list[str], seed: int = 0
                        ) -> tuple[list[dict], list[str], str | None]:
    """(variant groups, reasons some kinds were not made, reason the group is unusable)."""
    text = prompt_text(group.get("prompt"))
    try:
        q = parse_question(text)
        answer = q.answer
    except (ParseError, ZeroDivisionError) as exc:
        return [], [], f"not a supported arithmetic question ({exc})"
    gold = group.get("answer")
    if gold not in (None, "") and not _same_answer(gold, answer):
        return [], [], f"gold answer {gold!r} disagrees with the recomputed {format_number(answer)}"
    out, failed = [], []
    gid = ensure_id(group)["id"]
    for kind in kinds:
        rng = random.Random(f"{seed}:{gid}:{kind}")
        try:
            new_q, new_answer = make_variant(q, kind, rng)
            rendered = render_question(new_q)
            check = parse_question(rendered).answer  # independent recomputation from the text
        except (ParseError, ZeroDivisionError) as exc:
            failed.append(f"{kind}: {exc}")
            continue
        if check != new_answer or check.denominator != 1:
            failed.append(f"{kind}: recomputed answer {format_number(check)} != {format_number(new_answer)}")
            continue
        ans: Any = int(check) if isinstance(gold, int) or gold is None else format_number(check)
        difficulty = "easy" if kind.split("+")[-1] in EASIER_KINDS else "hard"
        out.append(derived_group(group, rendered, ans, augmentation=kind, difficulty=difficulty))
    return out, failed, None


# ---------------------------------------------------------------- pipeline steps


class ArithmeticVariantsStep:
    """Pipeline step: each batch plus the variants of its arithmetic questions.

    Groups that are not arithmetic questions (or whose gold disagrees) pass through
    unchanged and are counted in ``stats``; ``keep_original=False`` drops the originals.
    """

    def __init__(self, harder: list[str] | str = HARDER_KINDS, easier: list[str] | str = (), seed: int = 0,
                 keep_original: bool = True):
        def kinds(v) -> list[str]:
            return [k.strip() for k in (v.split(",") if isinstance(v, str) else v) if k.strip()]

        self.kinds = kinds(harder) + kinds(easier)
        for k in self.kinds:
            if any(part not in KINDS for part in k.split("+")):
                raise ValueError(f"unknown variant kind {k!r}; known: {', '.join(KINDS)}")
        self.seed = seed
        self.keep_original = keep_original
        self.stats: dict[str, int] = {"variants": 0, "not_arithmetic": 0, "variant_failed": 0}

    def __call__(self, batch: list[dict]) -> list[dict]:
        out = []
        for g in batch:
            variants, failed, bad = arithmetic_variants(g, self.kinds, seed=self.seed)
            if bad is not None:
                self.stats["not_arithmetic"] += 1
            self.stats["variant_failed"] += len(failed)
            self.stats["variants"] += len(variants)
            if self.keep_original or bad is not None:
                out.append(g)
            out.extend(variants)
        return out


class ParaphraseStep:
    """Pipeline step: each batch plus model paraphrases (``gradeset.generate`` config params)."""

    def __init__(self, backend: str, model: str, per_prompt: int = 1, check_numbers: bool = True,
                 keep_original: bool = True, template: str = PARAPHRASE_TEMPLATE, **generate: Any):
        self.cfg = {"backend": backend, "model": model, "n": 1, **generate}
        self.per_prompt = per_prompt
        self.check_numbers = check_numbers
        self.keep_original = keep_original
        self.template = template
        self.stats: dict[str, int] = {"paraphrases": 0, "rejected": 0}

    def _complete(self, prompts: list[Any]) -> list[str]:
        from gradeset.sources.llm import complete_texts

        return complete_texts(prompts, self.cfg)

    def __call__(self, batch: list[dict]) -> list[dict]:
        out: list[dict] = []
        last = None
        for original, new, _reason, _raw in paraphrase_groups(batch, self._complete, per_prompt=self.per_prompt,
                                                              check_numbers=self.check_numbers,
                                                              template=self.template, batch_size=len(batch) or 1):
            if self.keep_original and original is not last:
                out.append(original)
                last = original
            if new is None:
                self.stats["rejected"] += 1
            else:
                self.stats["paraphrases"] += 1
                out.append(new)
        return out
