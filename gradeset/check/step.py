"""``check`` as a pipeline step: groups pass through unchanged while the checks watch them.

A runner puts it anywhere in the step list (``- check: {group_size: 16}``) and, when
the stream ends, reads ``step.report()`` (a :class:`CheckReport`) and writes it with
``write_report`` / ``write_json`` at the output paths it owns (steps do no file I/O).
Its counts go in ``stats`` like any step. The check state is one object, so under Ray the
runner should call it in the driver (``process``), not inside ``map_batches`` workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradeset.check.checks import CheckReport, CheckRunner
from gradeset.check.config import CheckConfig


class CheckStep:
    """Pass-through step that runs every check over the groups it sees."""

    def __init__(self, layout: str | None = None, tokenizer: str | None = None,
                 test_prompts: list[str] | None = None, **options: Any):
        from gradeset.check.api import length_counter

        self.params = {"layout": layout, "tokenizer": tokenizer, "test_prompts": test_prompts, **options}
        self.config = CheckConfig.from_dict(options)
        length_fn, unit = length_counter(tokenizer)
        self._runner = CheckRunner(self.config, layout=layout, length_fn=length_fn, unit=unit,
                                   test_prompts=test_prompts, source="stage")
        self._seen = 0
        self._report: CheckReport | None = None
        self.stats: dict[str, int] = {"checked": 0}

    def __call__(self, batch: list[dict]) -> list[dict]:
        for g in batch:
            self._seen += 1
            self._runner.add(g, self._seen)
        self.stats["checked"] = self._seen
        self._report = None
        return batch

    def process(self, batches: Iterator[list[dict]]) -> Iterator[list[dict]]:
        for batch in batches:
            yield self(batch)

    def report(self) -> CheckReport:
        """The verdicts so far (the runner calls this after the stream ends)."""
        if self._report is None:
            self._report = self._runner.finish()
            self.stats["failed_checks"] = len(self._report.failed)
        return self._report

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        params = dict(state["params"])
        self.__init__(**params)  # type: ignore[misc]
