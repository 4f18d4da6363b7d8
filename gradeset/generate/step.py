"""The ``generate`` step for runners: a batch of groups in, the same groups with samples out.

Built from plain parameters (those of :class:`GenerateConfig`, plus ``cache_path``) so it
pickles into Ray workers; a local model is loaded once per step instance, on first use,
and reused for every batch.
"""

from __future__ import annotations

from typing import Any

from gradeset.generate.config import GenerateConfig


class GenerateStep:
    def __init__(self, cache_path: str | None = None, **params: Any):
        self.cfg = GenerateConfig(**params)
        self.cache_path = cache_path
        self.stats: dict[str, int] = {}
        self._backend = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_backend"] = None  # models and sockets do not travel; rebuilt on the worker
        return state

    def _get_backend(self):
        if self._backend is None:
            from gradeset.generate.backends import get_backend

            self._backend = get_backend(self.cfg)
        return self._backend

    def __call__(self, batch: list[dict]) -> list[dict]:
        from gradeset.generate import Stats, generate_groups

        if not batch:
            return batch
        stats = Stats()
        out = generate_groups(batch, self.cfg, cache_path=self.cache_path, stats=stats,
                              backend=self._get_backend())
        for key in ("groups", "cached", "generated", "failed", "requests", "retries", "two_step",
                    "completion_tokens"):
            self.stats[key] = self.stats.get(key, 0) + int(getattr(stats, key))
        return out
