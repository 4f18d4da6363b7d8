"""One-call entry points for commands and pipeline runners.

``check_groups`` runs the checks over an iterable of groups and writes the JSON and HTML
reports where asked; ``stage_counts`` describes one pipeline stage for the report's
"counts per stage" table. Runners pass plain dicts, so nothing here needs a CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from gradeset.check.checks import CheckReport, CheckRunner
from gradeset.check.config import CheckConfig
from gradeset.check.report import write_report
from gradeset.check.stats import DatasetStats, LengthFn, tokenizer_lengths, word_lengths


def length_counter(tokenizer: str | None) -> tuple[LengthFn, str]:
    """Token counts with a local tokenizer, else whitespace words."""
    if tokenizer:
        return tokenizer_lengths(tokenizer), "tokens"
    return word_lengths, "words"


def stage_counts(name: str, groups: Iterable[Mapping[str, Any]] | None = None, *,
                 rejected: int | None = None, counts: Mapping[str, Any] | None = None) -> dict:
    """A row of the per-stage table: from groups (one pass) or from counts the runner has."""
    row: dict[str, Any] = {"name": name}
    if groups is not None:
        st = DatasetStats(sample_size=0, length_fn=lambda texts: [0] * len(texts))
        for g in groups:
            st.add(g, lengths=(0, []))
        d = st.to_dict()
        row.update({k: d[k] for k in ("groups", "responses", "coverage", "accuracy")})
        row["buckets"] = d["buckets"]
    row.update(counts or {})
    if rejected is not None:
        row["rejected"] = rejected
    return row


def write_json(report: CheckReport, path: str | os.PathLike) -> None:
    from gradeset.io import write_bytes_atomic

    write_bytes_atomic(Path(path), orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2
                                                | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                                                default=str))


def check_groups(groups: Iterable[Mapping[str, Any]], options: Mapping[str, Any] | CheckConfig | None = None,
                 *, layout: str | None = None, tokenizer: str | None = None,
                 test_prompts: Iterable[str] | None = None, stages: list[dict] | None = None,
                 report: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None,
                 source: str = "input", exports: list[dict] | None = None) -> CheckReport:
    """Check a stream of groups (e.g. a pipeline's output) and write the reports asked for."""
    cfg = options if isinstance(options, CheckConfig) else CheckConfig.from_dict(dict(options or {}))
    length_fn, unit = length_counter(tokenizer)
    runner = CheckRunner(cfg, layout=layout, length_fn=length_fn, unit=unit, test_prompts=test_prompts,
                         source=source)
    for i, g in enumerate(groups, 1):
        runner.add(g, i)
    rep = runner.finish()
    rep.stages = list(stages or [])
    rep.exports = [{k: e.get(k) for k in ("path", "layout", "kind", "rows")} for e in exports or []]
    if json_path:
        write_json(rep, json_path)
    if report:
        write_report(rep, report)
    return rep
