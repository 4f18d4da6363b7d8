"""The ``generate`` step for runners: a batch of groups in, the same groups with samples out.

Built from plain parameters (those of :class:`GenerateConfig`, plus ``cache_path``) so it
pickles into Ray workers. One engine lives as long as the step: a local model is loaded
once and reused for every batch, repeated prompts are numbered across batches (so each
copy gets its own samples), and the request cache stays open.
"""

from __future__ import annotations

from typing import Any

from gradeset.generate.config import GenerateConfig

STAT_KEYS = ("groups", "cached", "generated", "failed", "requests", "retries", "two_step", "prompt_tokens",
             "completion_tokens")


class GenerateStep:
    def __init__(self, cache_path: str | None = None, **params: Any):
        from gradeset.generate.outcome import check_credentials

        self.cfg = GenerateConfig(**params)
        check_credentials(self.cfg)  # before any work: a pipeline check-only run says it too
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
        from gradeset.generate.outcome import BudgetExhausted, failure_verdict

        st = engine.stats
        before = (st.generated, st.failed, dict(st.errors_by_message))
        out = engine.run(batch)
        self.stats = {k: int(getattr(st, k)) for k in STAT_KEYS}
        if engine.prices is not None:
            self.stats["cost_micros"] = int(round(st.cost * 1e6))  # integer: runners add step stats up
        if engine.stop_reason is not None:
            raise BudgetExhausted(f"generate stopped: {engine.stop_reason}; finished samples are kept in the "
                                  "request cache; re-run to continue")
        # The verdict is per batch: a batch that mostly failed stops the pipeline before
        # its failed samples flow into verify and the exports.
        errors = {k: v - before[2].get(k, 0) for k, v in st.errors_by_message.items() if v > before[2].get(k, 0)}
        verdict = failure_verdict(st.generated - before[0], st.failed - before[1], self.cfg.max_failed, errors,
                                  knob="max_failed")
        if verdict is not None:
            raise verdict
        return out
