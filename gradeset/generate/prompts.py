"""Turning a group into what a model sees: system prompt, MCQ options, chat template.

Seed 003 appends the options of multiple-choice questions (MMLU-Pro, GPQA) to the
question text and runs every prompt through the model's chat template with a task
system prompt; this module does the same, once, for every backend.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gradeset.records import content_text, is_messages

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OPTION_FIELDS = ("options", "choices")


@dataclass
class Prompt:
    """A chat prompt ready for a backend: messages (system first when there is one)."""

    messages: list[dict[str, Any]]

    @property
    def system(self) -> str | None:
        if self.messages and self.messages[0].get("role") == "system":
            return content_text(self.messages[0].get("content"))
        return None

    @property
    def turns(self) -> list[dict[str, Any]]:
        """The messages without a leading system message (Anthropic takes it separately)."""
        return self.messages[1:] if self.system is not None else self.messages

    def plain_text(self) -> str:
        """The prompt as one string for raw completion endpoints without a chat template."""
        return "\n\n".join(content_text(m.get("content")) for m in self.messages)


def group_options(group: dict) -> list[tuple[str, str]] | None:
    """(letter, text) pairs from the group's ``options``/``choices`` field, or None.

    Accepts a list of strings, a dict keyed by letter, or a JSON string of either (how
    CSV files carry lists).
    """
    raw = None
    for name in OPTION_FIELDS:
        if group.get(name) not in (None, "", [], {}):
            raw = group[name]
            break
    if raw is None:
        return None
    if isinstance(raw, str):
        s = raw.strip()
        if not s.startswith(("[", "{")):
            return None
        try:
            raw = orjson.loads(s)
        except orjson.JSONDecodeError:
            return None
    if isinstance(raw, dict):
        return [(str(k).strip(), str(v)) for k, v in raw.items()]
    if isinstance(raw, list | tuple):
        items = [str(v) for v in raw if v is not None]
        if not items or len(items) > len(LETTERS):
            return None
        return [(LETTERS[i], v) for i, v in enumerate(items)]
    return None


def _already_listed(question: str, options: list[tuple[str, str]]) -> bool:
    """True when the question already shows its options (so ``auto`` adds nothing)."""
    hits = 0
    for letter, text in options:
        pattern = rf"(^|\s|\()\(?{re.escape(letter)}[\).:]\s*{re.escape(text.strip()[:40])}"
        if re.search(pattern, question, flags=re.MULTILINE):
            hits += 1
    return hits >= max(1, len(options) - 1)


def format_options(options: list[tuple[str, str]], mode: str) -> str:
    if mode == "inline":
        return "Options: " + " ".join(f"({letter}) {text}" for letter, text in options)
    return "\n".join(f"{letter}. {text}" for letter, text in options)


def append_options(question: str, group: dict, mode: str) -> str:
    """The question with its MCQ options appended per ``mode`` (auto|inline|newlines|none)."""
    if mode == "none":
        return question
    options = group_options(group)
    if not options:
        return question
    if mode == "auto":
        if _already_listed(question, options):
            return question
        mode = "newlines"
    sep = " " if mode == "inline" else "\n\n"
    return question.rstrip() + sep + format_options(options, mode)


def build_prompt(group: dict, system_prompt: str | None = None, mcq_options: str = "auto") -> Prompt:
    """The chat messages for a group.

    A string prompt becomes one user turn. The config's system prompt replaces a system
    message already in the prompt (the run-level choice wins, as in seed 003) and is
    added when there is none. MCQ options go on the last user turn.
    """
    raw = group.get("prompt")
    if is_messages(raw):
        messages = [dict(m) for m in raw]
    else:
        messages = [{"role": "user", "content": "" if raw is None else content_text(raw)}]
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if users:
        last = messages[users[-1]]
        last["content"] = append_options(content_text(last.get("content")), group, mcq_options)
    if system_prompt:
        if messages and messages[0].get("role") == "system":
            messages[0] = {"role": "system", "content": system_prompt}
        else:
            messages.insert(0, {"role": "system", "content": system_prompt})
    return Prompt(messages)


def apply_chat_template(tokenizer: Any, prompt: Prompt, template_kwargs: dict | None = None) -> str:
    """The text a local model is fed: the tokenizer's chat template with a generation prompt.

    Tokenizers without a template (base models) get the plain text, so base models still
    work; the system prompt is then simply the first paragraph.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True,
                                             **(template_kwargs or {}))
    return prompt.plain_text()


def template_id(tokenizer: Any) -> str:
    """A short, stable name for a tokenizer's chat template (``sha256:…``), or ``none``.

    Recorded in every sample so a dataset says which format its prompts were sampled in;
    two tokenizers with the same template get the same id.
    """
    tpl = getattr(tokenizer, "chat_template", None)
    if not tpl:
        return "none"
    if isinstance(tpl, dict):  # named templates: hash them all, in a stable order
        tpl = orjson.dumps(tpl, option=orjson.OPT_SORT_KEYS).decode()
    return "sha256:" + hashlib.sha256(str(tpl).encode("utf-8")).hexdigest()[:16]


def local_prompt_format(tokenizer: Any, source: str) -> dict[str, Any]:
    """``meta`` fields of a backend that applies the tokenizer's template itself."""
    return {"chat_template": template_id(tokenizer), "chat_template_from": source}


def with_think_end(text: str, think_end: str) -> str:
    """Stage-1 text with the end-of-thinking marker appended (seed 003's budget forcing)."""
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}{think_end}\n\n"


def needs_stage2(text: str, think_end: str) -> bool:
    return think_end not in (text or "")
