"""Questions from passages, and seed 000's best/good/poor versions, written by a model.

Seed 000's "extract key insights -> prompt/response pairs": the author's passage is the
reference answer (and the *best* version, score 1.0); the model writes questions the
passage answers, and optionally a *good* (correct, less detailed; 0.6) and a *poor*
(oversimplified; 0.2) answer. Model replies are hostile input: they are parsed as data
(JSON or numbered lines), never executed, and a reply that cannot be used is returned
with the reason instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from gradeset.records import new_group, new_response, prompt_text
from gradeset.sources.llm import failure_reason

Complete = Callable[[list[Any]], list[str]]

QUESTION_TEMPLATE = """You are writing training questions from an author's own writing.

Passage{where}:
\"\"\"
{text}
\"\"\"

Write {k} question(s) that this passage answers fully, phrased as a reader would ask them \
(for example "Explain the paradox of growth in emerging markets" or "Why don't fast-growing \
countries always deliver the best returns?"). Each question must be answerable from the passage \
alone, must not quote it, and must not mention "the passage" or "the author".
Reply with a JSON array of {k} string(s) and nothing else."""

GRADED_TEMPLATE = """Here is an expert's answer to a question, in the expert's own style.

Question: {question}

Expert answer:
\"\"\"
{text}
\"\"\"

Write two other answers to the same question:
- "good": correct but less detailed than the expert's (shorter, fewer specifics and numbers);
- "poor": oversimplified or missing the key insight, as a novice would answer.
Reply with a JSON object and nothing else: {{"good": "...", "poor": "..."}}"""

DEFAULT_SCORES = (1.0, 0.6, 0.2)
MIN_QUESTION_CHARS = 8
MAX_QUESTION_CHARS = 600


def _strip_think(text: str) -> str:
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    if "</think>" in text:
        text = text.split("</think>")[-1]
    return text.strip()


def _json_candidates(text: str, open_ch: str, close_ch: str) -> Iterator[Any]:
    """JSON values found in text: the whole text, fenced blocks, then the outermost bracket span."""
    seen = set()
    spans = [text]
    spans += re.findall(r"```(?:json)?\s*\n?(.*?)```", text, flags=re.S)
    i, j = text.find(open_ch), text.rfind(close_ch)
    if 0 <= i < j:
        spans.append(text[i: j + 1])
    for s in spans:
        s = s.strip()
        if not s or s in seen or len(s) > 200_000:
            continue
        seen.add(s)
        try:
            yield orjson.loads(s)
        except orjson.JSONDecodeError:
            continue


_LIST_ITEM = re.compile(r"^\s*(?:\d{1,3}\s*[.):]|[-*\u2022]|Q\d{0,3}\s*[.):])\s+(.+?)\s*$")
_Q_LABEL = re.compile(r"^(?:\*\*)?(?:question|q)\s*\d*\s*[:.)]\s*(?:\*\*)?\s*", re.I)


def _clean_question(q: str) -> str:
    q = q.strip().strip("*").strip()
    q = _Q_LABEL.sub("", q).strip()
    if len(q) >= 2 and q[0] == q[-1] and q[0] in "\"'":
        q = q[1:-1].strip()
    if len(q) >= 2 and q[0] == "\u201c" and q[-1] == "\u201d":
        q = q[1:-1].strip()
    return " ".join(q.split())


def parse_questions(reply: str | None, k: int | None = None) -> tuple[list[str], str | None]:
    """Questions from a reply (JSON list, {"questions": [...]}, or numbered/bulleted lines)."""
    failed = failure_reason(reply)
    if failed:
        return [], failed
    if not isinstance(reply, str) or not reply.strip():
        return [], "empty reply"
    text = _strip_think(reply)
    items: list[Any] | None = None
    for value in _json_candidates(text, "[", "]"):
        if isinstance(value, dict):
            value = value.get("questions", value.get("prompts"))
        if isinstance(value, list):
            items = value
            break
    if items is None:
        items = [m.group(1) for line in text.splitlines() if (m := _LIST_ITEM.match(line))]
        if not items:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            items = [ln for ln in lines if ln.endswith("?")]
    questions: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            item = item.get("question", item.get("prompt"))
        if not isinstance(item, str):
            continue
        q = _clean_question(item)
        if not MIN_QUESTION_CHARS <= len(q) <= MAX_QUESTION_CHARS:
            continue
        key = q.lower()
        if key in seen:
            continue
        seen.add(key)
        questions.append(q)
    if not questions:
        return [], "no questions found in the reply (expected a JSON list of strings or numbered lines)"
    return (questions[:k] if k else questions), None


_VERSION_LABEL = re.compile(r"^\s*(?:[-*#]+\s*)?(?:\*\*)?\s*(good|poor)\s*(?:answer|version)?\s*(?:\*\*)?\s*[:\-\u2013]"
                            r"\s*(?:\*\*)?", re.I | re.M)


def parse_graded(reply: str | None, best: str) -> tuple[dict[str, str] | None, str | None]:
    """{"good", "poor"} from a reply (JSON object or "Good: ... Poor: ..." sections)."""
    failed = failure_reason(reply)
    if failed:
        return None, failed
    if not isinstance(reply, str) or not reply.strip():
        return None, "empty reply"
    text = _strip_think(reply)
    found: dict[str, str] = {}
    for value in _json_candidates(text, "{", "}"):
        if isinstance(value, dict):
            low = {str(k).strip().lower(): v for k, v in value.items()}
            found = {name: low[name] for name in ("good", "poor") if isinstance(low.get(name), str)}
            if found:
                break
    if len(found) < 2:
        marks = list(_VERSION_LABEL.finditer(text))
        sections: dict[str, str] = {}
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            body = text[m.end(): end].strip().strip("\"").strip()
            sections.setdefault(m.group(1).lower(), body)
        for name in ("good", "poor"):
            found.setdefault(name, sections.get(name, ""))
    good = " ".join(str(found.get("good", "")).split())
    poor = " ".join(str(found.get("poor", "")).split())
    missing = [n for n, v in (("good", good), ("poor", poor)) if not v]
    if missing:
        return None, f"reply has no {' and no '.join(missing)} version (expected a JSON object with good and poor)"
    if good.lower() == poor.lower():
        return None, "good and poor versions are the same text"
    norm_best = " ".join(best.split()).lower()
    if good.lower() == norm_best or poor.lower() == norm_best:
        return None, "a version repeats the author's text"
    return {"good": good, "poor": poor}, None


def _where(p: dict) -> str:
    bits = []
    if p.get("file"):
        bits.append(str(p["file"]))
    if p.get("page"):
        bits.append(f"page {p['page']}")
    if p.get("heading"):
        bits.append(f"section \"{p['heading']}\"")
    return f" (from {', '.join(bits)})" if bits else ""


def question_prompt(passage: dict, k: int, template: str = QUESTION_TEMPLATE) -> str:
    return template.format(text=passage["text"], k=k, where=_where(passage))


def graded_prompt(question: str, passage: dict, template: str = GRADED_TEMPLATE) -> str:
    return template.format(question=question, text=passage["text"])


def question_group(question: str, passage: dict, *, task: str | None = None) -> dict:
    """The group of one question: the passage is its reference answer."""
    meta = {k: passage.get(k) for k in ("file", "page", "page_end", "heading", "index") if passage.get(k) is not None}
    if passage.get("id"):
        meta["passage_id"] = passage["id"]
    fields: dict[str, Any] = {"reference": passage["text"], "source": str(passage.get("file") or "documents"),
                              "meta": meta}
    if task:
        fields["task"] = task
    return new_group(question, passage["text"], **fields)


def graded_group(group: dict, versions: dict[str, str], model: str | None,
                 scores: tuple[float, float, float] = DEFAULT_SCORES) -> dict:
    """Seed 000's three versions as one group: best (the author's text), good, poor."""
    best, good, poor = scores
    group["responses"] = [
        new_response(group["reference"], score=best, meta={"version": "best", "model": "author"}),
        new_response(versions["good"], score=good, meta={"version": "good", "model": model}),
        new_response(versions["poor"], score=poor, meta={"version": "poor", "model": model}),
    ]
    return group


def questions_for_passages(passages: Iterable[dict], complete: Complete, *, k: int = 3,
                           template: str = QUESTION_TEMPLATE, batch_size: int = 32
                           ) -> Iterator[tuple[dict, list[str], str | None, Any]]:
    """(passage, questions, reason when none, raw reply) per passage, in batches."""
    batch: list[dict] = []

    def flush():
        replies = complete([question_prompt(p, k, template) for p in batch])
        if len(replies) != len(batch):
            raise RuntimeError(f"backend returned {len(replies)} replies for {len(batch)} prompts")
        for p, raw in zip(batch, replies):
            qs, reason = parse_questions(raw, k)
            yield p, qs, reason, raw

    for p in passages:
        batch.append(p)
        if len(batch) >= batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def graded_for_groups(items: list[tuple[dict, dict]], complete: Complete, *, template: str = GRADED_TEMPLATE
                      ) -> list[tuple[dict, dict, dict[str, str] | None, str | None, Any]]:
    """(passage, group, versions or None, reason, raw reply) for (passage, group) pairs."""
    if not items:
        return []
    replies = complete([graded_prompt(prompt_text(g["prompt"]), p, template) for p, g in items])
    if len(replies) != len(items):
        raise RuntimeError(f"backend returned {len(replies)} replies for {len(items)} prompts")
    out = []
    for (p, g), raw in zip(items, replies):
        versions, reason = parse_graded(raw, p["text"])
        out.append((p, g, versions, reason, raw))
    return out
