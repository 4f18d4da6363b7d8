"""``gradeset inspect IN``: what a file is before you convert or train on it.

Prints the file format, the detected layout and why, counts (rows, groups,
responses, graded share, correctness buckets), the input fields with their types,
bad rows, and three examples truncated to fit a terminal. ``--json`` gives the same
as one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gradeset.errors import GradesetError

MAX_TEXT = 160
MAX_ITEMS = 4


def register(sub) -> None:
    p = sub.add_parser("inspect", help="file format, layout, counts, fields and examples of a dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="file or folder to inspect")
    p.add_argument("--layout", help="read as this layout instead of detecting it")
    p.add_argument("--split", help="split of a Hugging Face DatasetDict folder")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--examples", type=int, default=3, help="how many examples to show (default 3)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N rows (large files)")
    p.set_defaults(func=run)


def truncate(value: Any, max_text: int = MAX_TEXT, max_items: int = MAX_ITEMS) -> Any:
    """A value cut down for display: long strings and lists shortened, saying by how much."""
    if isinstance(value, str):
        if len(value) > max_text:
            return value[:max_text] + f"…(+{len(value) - max_text} chars)"
        return value
    if isinstance(value, list):
        out = [truncate(v, max_text, max_items) for v in value[:max_items]]
        if len(value) > max_items:
            out.append(f"…(+{len(value) - max_items} more)")
        return out
    if isinstance(value, dict):
        return {k: truncate(v, max_text, max_items) for k, v in value.items()}
    return value


def _type(v: Any) -> str:
    from gradeset.io.shards import _json_type

    if isinstance(v, list) and v and isinstance(v[0], dict):
        return "list[object]"
    return _json_type(v)


def layout_reasons(rows: list[dict]) -> tuple[str, dict[str, int], dict[str, int]]:
    """(best layout, votes per layout, best score per layout) over sample rows."""
    from gradeset.formats.registry import layout_votes

    votes, best_scores = layout_votes(rows)
    winner = max(votes.items(), key=lambda kv: kv[1])[0] if votes else ""
    return winner, votes, best_scores


def inspect_path(path: str, layout: str | None = None, split: str | None = None, examples: int = 3,
                 limit: int | None = None) -> dict:
    """Everything ``gradeset inspect`` shows, as data."""
    from gradeset.formats import ImportContext, get_layout, import_rows
    from gradeset.formats import _rows_of_files as rows_of_files
    from gradeset.io.readers import detect_format, input_files, is_empty, iter_rows, peek_rows
    from gradeset.records import bucket

    p = Path(path)
    if not p.exists():
        raise GradesetError(f"{path}: no such file or folder")
    if is_empty(p):
        raise GradesetError(f"{path}: the file is empty")
    fmt = detect_format(p)
    files = input_files(p) if p.is_dir() else [p]
    sample = peek_rows(files[0] if len(files) > 1 else p, 64, split=split)
    if not sample:
        raise GradesetError(f"{path}: no readable records (see `gradeset convert` for the bad lines)")
    winner, votes, scores = layout_reasons(sample)
    file_layouts: dict[str, str] = {}
    if len(files) > 1 and not layout:
        from gradeset.formats.registry import detect_layout

        for f in files:
            rows = peek_rows(f, 64)
            if rows:
                file_layouts[str(f)] = detect_layout(rows, str(f))
    if layout:
        chosen, why = get_layout(layout).name, "given with --layout"
    elif len(set(file_layouts.values())) > 1:
        chosen = "mixed"
        why = ("the files have different layouts: "
               + "; ".join(f"{Path(f).name} is {lay}" for f, lay in file_layouts.items())
               + "; each file is counted with its own layout here, but convert needs --from or one layout")
    else:
        from gradeset.formats import _detect_files

        chosen = _detect_files(p, files, split)
        fields = ", ".join(sorted(sample[0])[:12])
        why = (f"{votes.get(chosen, 0)} of {len(sample)} sampled rows match it best (fields: {fields})")
        others = {k: v for k, v in votes.items() if k != chosen}
        if others:
            why += "; other rows look like " + ", ".join(f"{k} ({v})" for k, v in others.items())
    rejects: list = []
    state = {"reading": False, "bad_lines": 0}

    def on_reject(rej) -> None:
        rejects.append(rej)
        if state["reading"]:  # rejected by the file reader: a row that never reached the layout
            state["bad_lines"] += 1

    ctx = ImportContext(source=str(p), on_reject=on_reject, options={"_path": str(p), "_split": split})
    field_types: dict[str, set[str]] = {}
    field_counts: dict[str, int] = {}
    n_rows = 0

    def counted(rows):
        nonlocal n_rows
        it = iter(rows)
        while True:
            state["reading"] = True
            try:
                loc, row = next(it)
            except StopIteration:
                return
            finally:
                state["reading"] = False
            n_rows += 1
            for k, v in row.items():
                field_counts[k] = field_counts.get(k, 0) + 1
                t = field_types.setdefault(k, set())
                if len(t) < 4:
                    t.add(_type(v))
            yield loc, row
            if limit is not None and n_rows >= limit:
                return

    if chosen == "mixed":
        groups = (g for f in files for g in import_rows(counted(rows_of_files([f], ctx)),
                                                        file_layouts.get(str(f), "group"), ctx))
    else:
        raw = rows_of_files(files, ctx) if len(files) > 1 else iter_rows(p, ctx.on_reject, split=split)
        groups = import_rows(counted(raw), chosen, ctx)
    n_groups = n_resp = n_graded = n_correct = n_verdicts = 0
    buckets: dict[str, int] = {}
    shown: list[dict] = []
    for g in groups:
        n_groups += 1
        rs = g.get("responses") or []
        n_resp += len(rs)
        n_graded += sum(1 for r in rs if isinstance(r, dict) and r.get("score") is not None)
        n_correct += sum(1 for r in rs if isinstance(r, dict) and r.get("correct") is True)
        verdicts = sum(1 for r in rs if isinstance(r, dict) and r.get("correct") is not None)
        n_verdicts += verdicts
        if verdicts or not rs or not any(isinstance(r, dict) and r.get("score") is not None for r in rs):
            b = bucket(g)  # groups with scores but no verdicts (preference pairs) have no bucket
            buckets[b] = buckets.get(b, 0) + 1
        if len(shown) < examples:
            shown.append(truncate(g))
    n_rows += state["bad_lines"]
    return {
        "path": str(p), "file_format": fmt, "files": len(files), "layout": chosen, "why": why,
        "file_layouts": file_layouts,
        "candidates": scores,
        "rows": n_rows, "groups": n_groups, "responses": n_resp,
        "graded_responses": n_graded, "graded_share": round(n_graded / n_resp, 4) if n_resp else None,
        "correct_responses": n_correct, "verdict_responses": n_verdicts, "buckets": buckets,
        "rejected": len(rejects), "reject_examples": [r.message() for r in rejects[:5]],
        "fields": {k: {"types": sorted(field_types[k]), "present": field_counts[k]} for k in field_counts},
        "notes": ctx.notes, "limited_to": limit, "examples": shown,
    }


def render(info: dict) -> str:
    from gradeset.io.writers import dumps

    lines = [
        f"{info['path']}: {info['file_format']}" + (f" ({info['files']} files)" if info["files"] > 1 else ""),
        f"layout: {info['layout']} ({info['why']})",
        f"rows: {info['rows']}" + (f" (first {info['limited_to']} only)" if info["limited_to"] else "")
        + f", groups: {info['groups']}, responses: {info['responses']}",
    ]
    if info["responses"]:
        share = info["graded_share"] or 0.0
        line = f"scored: {info['graded_responses']} of {info['responses']} responses ({share:.1%})"
        if info["verdict_responses"]:
            line += f"; with a right/wrong verdict: {info['verdict_responses']}, correct: {info['correct_responses']}"
        elif info["graded_responses"]:
            line += "; no right/wrong verdicts (scores only, as in preference pairs)"
        lines.append(line)
    if info["buckets"]:
        lines.append("groups by correctness: " + ", ".join(f"{k} {v}" for k, v in sorted(info["buckets"].items())))
    lines.append("fields:")
    width = max((len(k) for k in info["fields"]), default=0)
    for k, v in info["fields"].items():
        lines.append(f"  {k:<{width}}  {'|'.join(v['types'])}  ({v['present']} rows)")
    if info["rejected"]:
        lines.append(f"bad rows: {info['rejected']}")
        lines += [f"  {m}" for m in info["reject_examples"]]
    for n in info["notes"]:
        lines.append(f"note: {n}")
    for i, ex in enumerate(info["examples"], 1):
        lines.append(f"example {i}:")
        lines.append("  " + dumps(ex).decode())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = inspect_path(args.input, args.layout, args.split, args.examples, args.limit)
    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        print(render(info))
    return 0
