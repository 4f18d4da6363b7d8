"""What every backend returns and raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradeset.generate.prompts import Prompt


@dataclass
class Sample:
    """One completion as a backend saw it (before two-step joining and caching)."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RequestError(Exception):
    """A failed request. ``retryable`` errors (429, 5xx, timeouts, dropped connections,
    unreadable bodies) are retried with back-off; the others fail the sample at once."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True,
                 retry_after: float | None = None, n_unsupported: bool = False, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable  # no connection could be made (wrong host/port, server down)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.n_unsupported = n_unsupported


def classify_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying."""
    return status in (408, 409, 425, 429) or status >= 500


class Backend:
    """An async backend: ``generate`` is one request for ``n`` samples of one prompt.

    ``prefill`` is assistant text the model must continue (stage 2 of two-step
    generation). A backend may return fewer than ``n`` samples when it cannot do ``n``
    in one request (the engine asks again for the rest).
    """

    name = "base"
    supports_n = False
    local = False

    def prompt_format(self) -> dict:
        """What every sample records about the prompt format (``meta.chat_template``)."""
        return {}

    async def start(self) -> None:  # pragma: no cover - trivial
        return None

    async def close(self) -> None:  # pragma: no cover - trivial
        return None

    async def generate(self, prompt: Prompt, n: int, max_tokens: int, *, prefill: str | None = None,
                       seed: int | None = None) -> list[Sample]:
        raise NotImplementedError


class LocalBackend:
    """A batched local backend: one call runs many prompts on the local accelerator."""

    name = "local"
    local = True

    def generate_batch(self, items: list[tuple[Prompt, str | None]], n: int, max_tokens: int,
                       seed: int | None = None) -> list[list[Sample]]:
        """For each (prompt, prefill) ``n`` samples of at most ``max_tokens`` new tokens."""
        raise NotImplementedError

    def close(self) -> None:
        return None
