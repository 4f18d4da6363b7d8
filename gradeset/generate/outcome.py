"""Whether a generation run did its job: credentials before it starts, failures after.

A run whose requests all failed used to exit 0 with "20 failed", and the next command
then complained about something else. Here the verdict is explicit:

- no ``--base-url`` and no API key: an error before any request (exit 2, bad usage);
- every request failed (the server refused or could not be reached, and nothing was
  answered): :class:`NothingGenerated`, exit 2 like the engine's early stop for the same
  cause on a big run (a wrong URL, model name or key is a usage error);
- some samples came back but more than ``max_failed`` of those tried failed:
  :class:`GenerationFailed`, exit 1.

Both name the server's first distinct messages with their counts.
- a ``max_cost`` / ``max_total_tokens`` stop: :class:`BudgetExhausted` (exit 1).

Finished samples stay in the request cache in every case: re-running resumes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gradeset.errors import GradesetError
from gradeset.generate.config import OPENAI_URL, GenerateConfig

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
HOSTED = {"openai": OPENAI_URL.rstrip("/")}
MESSAGE_LIMIT = 300


class GenerationFailed(GradesetError):
    """Too many samples failed: the run did not do its job (exit 1; finished work is cached)."""

    exit_code = 1


class NothingGenerated(GenerationFailed):
    """Every request failed: the setup is wrong (URL, model, key, server down); exit 2."""

    exit_code = 2


class BudgetExhausted(GradesetError):
    """A ``max_cost`` / ``max_total_tokens`` stop (exit 1; finished work is cached)."""

    exit_code = 1


def check_credentials(cfg: GenerateConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a hosted API without a key before anything is sent.

    Forgetting ``--base-url`` for a local server used to send every prompt to the public
    OpenAI host without a key and record one 401 per sample.
    """
    env = os.environ if environ is None else environ
    key_env = cfg.api_key_env or DEFAULT_KEY_ENV.get(cfg.backend)
    if key_env is None or env.get(key_env):
        return
    hosted = HOSTED.get(cfg.backend)
    base = (cfg.base_url or "").rstrip("/")
    if cfg.backend == "anthropic" and not base:
        raise GradesetError(f"the anthropic backend needs an API key: set {key_env} (or --api-key-env NAME), "
                            "or --base-url for a compatible local server")
    if hosted is not None and base == hosted:
        raise GradesetError(
            f"no --base-url given and {key_env} is not set: the {cfg.backend} backend would send every prompt "
            f"to {hosted} without a key. Pass --base-url for your server (e.g. http://127.0.0.1:8000/v1), "
            f"or set {key_env} to use the hosted API")


def short_message(error: str) -> str:
    return error if len(error) <= MESSAGE_LIMIT else error[:MESSAGE_LIMIT] + "…"


def error_digest(counts: Mapping[str, int], limit: int = 3) -> str:
    """The most frequent distinct error messages with counts, e.g. ``18× HTTP 400: ...``."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{n}× {msg}" for msg, n in ranked[:limit]]
    if len(ranked) > limit:
        parts.append(f"and {len(ranked) - limit} other message(s)")
    return "; ".join(parts)


def failure_verdict(generated: int, failed: int, max_failed: float, errors: Mapping[str, int],
                    prefix: str = "generate", knob: str = "--max-failed") -> GenerationFailed | None:
    """The error to raise when this run failed (every sample, or more than ``max_failed``), else None."""
    tried = generated + failed
    if failed == 0 or tried == 0:
        return None
    share = failed / tried
    if generated and share <= max_failed:
        return None
    tail = (f": {error_digest(errors)}. Finished samples are kept in the request cache; fix the cause and "
            "re-run the same command to retry just the failed ones")
    if not generated:
        return NothingGenerated(f"{prefix}: every request failed{tail}")
    return GenerationFailed(f"{prefix}: {failed} of {tried} samples failed ({share:.0%} > {knob} "
                            f"{max_failed:g}){tail}")
