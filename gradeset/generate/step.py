"""The ``generate`` step for runners: a batch of groups in, the same groups with samples out.

Built from plain parameters (those of :class:`GenerateConfig`, plus ``cache_path``) so it
pickles into Ray workers. One engine lives as long as the step: a local model is loaded
once and reused for every batch, repeated prompts are numbered across batches (so each
copy gets its own samples), and the request cache stays open.
"""

from __future__ import annotations

from typing import Any

from gradeset.generate.config import GenerateConfig

STAT_KEYS = ("groups", "cached", "generated", "failed", "requests", "retries", "two_step", "completion_tokens")


class GenerateStep:
    def __init__(self, cache_path: str | None = None, **params: Any):
        self.cfg = GenerateConfig(**params)
        self.cache_path = cache_path
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self._engine = None
        self.show_progress = False  # a runner turns this on: a per-batch sample bar inside its chunk bar

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_engine"] = None  # models, sockets and open files do not travel; rebuilt on the worker
        return state

    @property
    def engine(self):
        if self._engine is None:
            from gradeset.generate.cache import RequestCache
            from gradeset.generate.engine import Engine

            self._engine = Engine(self.cfg, RequestCache(self.cache_path), progress=self.show_progress)
        return self._engine

    def __call__(self, batch: list[dict]) -> list[dict]:
        if not batch:
            return batch
        engine = self.engine
        out = engine.run(batch)
        self.stats = {k: int(getattr(engine.stats, k)) for k in STAT_KEYS}
        return out
