"""Evaluation outputs laid out as seed 004 does: a per-example CSV and a metrics summary.

``<out_dir>/debug/<stage>_<run_id>.csv`` holds one row per response (seed 004's
"detailed per-example analysis"), ``<stage>_<run_id>_metrics.txt`` the summary a person
reads, and ``<stage>_<run_id>_metrics.json`` the same numbers for scripts. All writes are
atomic.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gradeset.evaluate.metrics import has_answer, has_reasoning
from gradeset.io import atomic_open

CSV_COLUMNS = (
    "id", "task", "category", "difficulty", "sample_index", "prompt", "answer", "response",
    "reasoning", "parsed", "correct", "score", "has_reasoning", "has_answer", "detail",
    "finish_reason", "model",
)


def new_run_id() -> str:
    """A sortable run id (UTC time), seed 004's ``[run_id]``."""
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime())


def debug_paths(out_dir: str | os.PathLike, stage: str, run_id: str) -> dict[str, Path]:
    debug = Path(out_dir) / "debug"
    stem = f"{stage}_{run_id}"
    return {
        "csv": debug / f"{stem}.csv",
        "txt": debug / f"{stem}_metrics.txt",
        "json": debug / f"{stem}_metrics.json",
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def example_rows(groups: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """One row per response (a group without responses gives one row with empty response cells)."""
    from gradeset.records import prompt_text, response_text

    for g in groups:
        base = {
            "id": g.get("id"), "task": g.get("task"), "category": g.get("category"),
            "difficulty": g.get("difficulty"), "prompt": prompt_text(g.get("prompt")), "answer": g.get("answer"),
        }
        responses = g.get("responses") or []
        if not responses:
            yield dict(base)
            continue
        for i, r in enumerate(responses):
            meta = r.get("meta") or {}
            yield {
                **base,
                "sample_index": meta.get("sample_index", i),
                "response": response_text(r),
                "reasoning": r.get("reasoning"),
                "parsed": r.get("parsed"),
                "correct": r.get("correct"),
                "score": r.get("score"),
                "has_reasoning": has_reasoning(r),
                "has_answer": has_answer(r),
                "detail": r.get("detail") or meta.get("verify_detail") or meta.get("error"),
                "finish_reason": meta.get("finish_reason"),
                "model": meta.get("model"),
            }


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    with atomic_open(path, "w") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
            n += 1
    return n


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f} ({value * 100:.2f}%)"
    return str(value)


def metrics_text(metrics: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
    """The human summary: header lines, headline metrics, then one block per breakdown slice."""
    lines = [f"{k}: {v}" for k, v in (header or {}).items() if v is not None]
    if lines:
        lines.append("")
    for key, value in metrics.items():
        if key.startswith("by_") or key == "groups_for_k":
            continue
        lines.append(f"{key}: {_fmt(value)}")
    gk = metrics.get("groups_for_k") or {}
    short = {k: v for k, v in gk.items() if v != metrics.get("n_groups")}
    if short:
        lines.append("groups with at least k graded responses: " + ", ".join(f"k={k}: {v}" for k, v in short.items()))
    for key, value in metrics.items():
        if not key.startswith("by_"):
            continue
        lines.append("")
        lines.append(f"[{key}]")
        for name, m in value.items():
            ks = [k for k in m if k.startswith(("pass@", "maj@"))]
            parts = [f"accuracy {_pct(m.get('accuracy'))}"] + [f"{k} {_pct(m[k])}" for k in ks]
            parts += [f"thinking {_pct(m.get('thinking_proportion'))}", f"answer {_pct(m.get('answer_proportion'))}",
                      f"groups {m.get('n_groups')}", f"responses {m.get('n_responses')}"]
            lines.append(f"  {name}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v * 100:.2f}%"


def write_metrics(metrics: Mapping[str, Any], *, txt: str | os.PathLike | None = None,
                  json_path: str | os.PathLike | None = None, header: Mapping[str, Any] | None = None) -> None:
    if txt is not None:
        with atomic_open(txt, "w") as fh:
            fh.write(metrics_text(metrics, header))
    if json_path is not None:
        payload = {**({"run": dict(header)} if header else {}), **metrics}
        with atomic_open(json_path, "w") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
            fh.write("\n")


def table(rows: Mapping[str, Mapping[str, Any]], keys: Iterable[str] | None = None) -> str:
    """A plain-text comparison table: one row per stage (base, sft, grpo, ...)."""
    keys = list(keys or ("accuracy", "pass@1", "thinking_proportion", "answer_proportion", "n_groups"))
    name_w = max([5, *(len(n) for n in rows)])
    widths = [max(len(k), 8) for k in keys]
    out = ["stage".ljust(name_w) + "  " + "  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))]
    for name, m in rows.items():
        cells = []
        for k, w in zip(keys, widths, strict=True):
            v = m.get(k)
            cells.append(("n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)).rjust(w))
        out.append(name.ljust(name_w) + "  " + "  ".join(cells))
    return "\n".join(out)
