"""``gradeset prompts-from-docs PASSAGES --out OUT --backend B --model M``.

Seed 000's "extract key insights -> prompt/response pairs": for each passage (from
``gradeset extract``) the model writes questions the passage answers; each question
becomes a group whose reference answer (and ``answer``) is the passage text, with
``source`` = the document and ``meta`` = file, page, heading, passage id.

With ``--graded-versions`` each group also gets seed 000's three versions as scored
responses: best = the author's passage (1.0), good (0.6) and poor (0.2) written by the
model (``--scores`` changes the scores). Replies that cannot be parsed are written to
``OUT.rejects.jsonl`` with the reason and the raw reply; they never stop the run.
"""

from __future__ import annotations

import argparse
import sys

from gradeset.commands._common import add_quiet, progress
from gradeset.errors import GradesetError


def register(sub) -> None:
    from gradeset.sources.llm import add_backend_args

    p = sub.add_parser("prompts-from-docs", help="questions (and best/good/poor versions) from passages",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("passages", help="passages file written by `gradeset extract` (needs a text field)")
    p.add_argument("--out", "-o", required=True, help="output groups")
    p.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    p.add_argument("--questions-per-passage", "-k", type=int, default=3, help="questions per passage (default 3)")
    p.add_argument("--graded-versions", action="store_true",
                   help="also write best (author), good and poor versions as scored responses")
    p.add_argument("--scores", default="1.0,0.6,0.2", help="scores of best,good,poor (default 1.0,0.6,0.2)")
    p.add_argument("--task", help="task recorded on every group (e.g. judge)")
    p.add_argument("--text-col", default="text", help="passage text field (default text)")
    p.add_argument("--batch-size", type=int, default=256, help="passages per backend call (default 256)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad passage row (exit 2)")
    add_backend_args(p, temperature=0.7, max_tokens=1024)
    add_quiet(p)
    p.set_defaults(func=run)


def _scores(text: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise GradesetError(f"--scores: expected three numbers like 1.0,0.6,0.2, got {text!r}") from exc
    if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
        raise GradesetError(f"--scores: expected three numbers in [0, 1], got {text!r}")
    return vals  # type: ignore[return-value]


def run(args) -> int:
    from pathlib import Path

    from gradeset.io import Reject, RejectLog, open_writer, rejects_path_for
    from gradeset.io.readers import iter_rows
    from gradeset.io.writers import dumps
    from gradeset.sources.docs_prompts import (
        graded_for_groups,
        graded_group,
        question_group,
        questions_for_passages,
    )
    from gradeset.sources.llm import complete_from_args

    if args.questions_per_passage < 1:
        raise GradesetError("--questions-per-passage must be at least 1")
    scores = _scores(args.scores)
    src = Path(args.passages)
    if not src.exists():
        raise GradesetError(f"{src}: no such file or folder")
    if src.is_file() and src.stat().st_size == 0:
        raise GradesetError(f"{src}: the file is empty")
    complete = complete_from_args(args, args.out)
    counts = {"read": 0, "bad_rows": 0, "used": 0, "bad_replies": 0, "questions": 0, "graded_bad": 0,
              "written": 0, "duplicates": 0}
    seen_questions: set[str] = set()
    rejects = RejectLog(rejects_path_for(args.out), strict=args.strict)

    def on_read_reject(rej) -> None:
        counts["read"] += 1
        counts["bad_rows"] += 1
        rejects.add(rej)

    def passages():
        for loc, row in iter_rows(src, on_read_reject):
            counts["read"] += 1
            text = row.get(args.text_col)
            if not isinstance(text, str) or not text.strip():
                counts["bad_rows"] += 1
                rejects.add(Reject(str(src), loc, f"{args.text_col}: missing or empty passage text", dumps(row)))
                continue
            p = dict(row)
            p["text"] = text.strip()
            p["_line"] = loc
            yield p

    with rejects, open_writer(args.out, args.out_format) as writer:
        results = questions_for_passages(
            progress(passages(), desc="passages", unit="passage", disable=args.quiet), complete,
            k=args.questions_per_passage, batch_size=args.batch_size)
        pending: list[tuple[dict, dict]] = []

        def emit(items: list[tuple[dict, dict]]) -> None:
            if not args.graded_versions:
                writer.write([g for _, g in items])
                counts["written"] += len(items)
                return
            rows = []
            for p, g, versions, reason, raw in graded_for_groups(items, complete):
                if versions is None:
                    counts["graded_bad"] += 1
                    rejects.add(Reject(str(src), p["_line"], f"graded versions for {g['prompt']!r}: {reason}",
                                       raw if isinstance(raw, str) else None))
                    continue
                rows.append(graded_group(g, versions, args.model, scores))
            writer.write(rows)
            counts["written"] += len(rows)

        for p, questions, reason, raw in results:
            if reason is not None:
                counts["bad_replies"] += 1
                rejects.add(Reject(str(src), p["_line"], f"questions: {reason}", raw if isinstance(raw, str) else None))
                continue
            counts["used"] += 1
            passage = {k: v for k, v in p.items() if k != "_line"}
            for q in questions:
                key = " ".join(q.lower().split())
                if key in seen_questions:
                    counts["duplicates"] += 1
                    continue
                seen_questions.add(key)
                counts["questions"] += 1
                pending.append((p, question_group(q, passage, task=args.task)))
            if len(pending) >= args.batch_size:
                emit(pending)
                pending = []
        emit(pending)
    c = counts
    line = (f"prompts-from-docs: read {c['read']} passages = {c['used']} used + {c['bad_replies']} unusable "
            f"model replies + {c['bad_rows']} bad rows; {c['questions']} questions")
    if c["duplicates"]:
        line += f" (+{c['duplicates']} repeated from an earlier passage, left out)"
    if args.graded_versions:
        line += f", {c['graded_bad']} rejected for unusable graded versions"
    line += f"; wrote {c['written']} groups"
    if rejects.count:
        line += f"; rejects in {rejects.path}"
    print(line, file=sys.stderr)
    if c["used"] == 0 and c["read"] > 0:
        raise GradesetError("no passage gave a usable reply; see the reject file")
    return 0
