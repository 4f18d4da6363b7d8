"""``gradeset extract DOCS... --out OUT``: documents to passages.

Bad documents (scanned or encrypted PDFs, corrupt DOCX, unsupported types) are listed
on stderr and in ``OUT.rejects.jsonl`` and do not stop the others. Exit code: 0 when
at least one document gave passages (even if others were listed as bad; ``--strict``
makes any bad document exit 2), 2 when no document could be read.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from gradeset.commands._common import add_quiet, progress
from gradeset.errors import GradesetError


def register(sub) -> None:
    p = sub.add_parser("extract", help="documents (PDF, DOCX, Markdown, text) to passages",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("docs", nargs="+", help="documents, or folders searched for *.pdf/*.docx/*.md/*.txt")
    p.add_argument("--out", "-o", required=True, help="passages file (JSONL, Parquet, CSV)")
    p.add_argument("--format", dest="out_format", help="output file format (default from extension)")
    p.add_argument("--passage-tokens", "--max-tokens", dest="max_tokens", type=int, default=400,
                   help="token budget of one passage (default 400; --max-tokens is the old name)")
    p.add_argument("--overlap", type=int, default=50,
                   help="tokens of the previous passage repeated at the start of the next (default 50)")
    p.add_argument("--min-tokens", type=int, default=8,
                   help="drop passages shorter than this (page numbers, stray captions; default 8)")
    p.add_argument("--tokenizer", help="count tokens with this Hugging Face tokenizer instead of the "
                                       "word+punctuation estimate")
    p.add_argument("--keep-duplicates", action="store_true",
                   help="keep passages whose text already came from another document (default: once)")
    p.add_argument("--strict", action="store_true", help="exit 2 if any document could not be read")
    add_quiet(p)
    p.set_defaults(func=run)


DOC_GLOBS = ("*.pdf", "*.docx", "*.md", "*.markdown", "*.txt")


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders expanded (recursively, sorted) to the documents inside."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted({f for g in DOC_GLOBS for f in p.rglob(g) if f.is_file()})
            if not found:
                raise GradesetError(f"{p}: folder has no PDF, DOCX, Markdown or text documents")
            out.extend(found)
        else:
            out.append(p)
    return out


def run(args) -> int:
    from gradeset.io import Reject, RejectLog, rejects_path_for
    from gradeset.io import write_rows as write_all
    from gradeset.sources.documents import DocumentError, read_blocks
    from gradeset.sources.passages import document_passages, estimate_tokens, tokenizer_counter

    if args.max_tokens < 8:
        raise GradesetError("--passage-tokens must be at least 8")
    if not 0 <= args.overlap < args.max_tokens:
        raise GradesetError("--overlap must be >= 0 and smaller than --passage-tokens")
    count = tokenizer_counter(args.tokenizer) if args.tokenizer else estimate_tokens
    files = expand_inputs(args.docs)
    failed: list[tuple[str, str]] = []
    per_file: list[tuple[str, int]] = []
    notes: list[str] = []
    seen: set[str] = set()
    duplicates = [0]
    rejects = RejectLog(rejects_path_for(args.out), stream=io.StringIO())  # listed below instead

    def passages():
        for f in progress(files, desc="extract", unit="doc", disable=args.quiet):
            try:
                blocks, file_notes = read_blocks(f)
            except DocumentError as exc:
                failed.append((str(f), exc.reason))
                rejects.add(Reject(str(f), None, exc.reason))
                continue
            notes.extend(file_notes)
            rows, short = document_passages(str(f), blocks, max_tokens=args.max_tokens,
                                            overlap=args.overlap, min_tokens=args.min_tokens, count=count)
            if not rows and short:  # a short note is a document too: keep it whole rather than drop it
                rows, _ = document_passages(str(f), blocks, max_tokens=args.max_tokens, overlap=args.overlap,
                                            min_tokens=1, count=count)
                notes.append(f"{f}: short document ({len(rows)} passage(s) under {args.min_tokens} tokens) kept")
                short = 0
            if not rows:
                failed.append((str(f), "no text found"))
                rejects.add(Reject(str(f), None, "no text found"))
                continue
            if short:
                notes.append(f"{f}: {short} passage(s) under {args.min_tokens} tokens dropped")
            per_file.append((str(f), len(rows)))
            for r in rows:
                if not args.keep_duplicates:
                    if r["id"] in seen:
                        duplicates[0] += 1
                        continue
                    seen.add(r["id"])
                yield r

    with rejects:
        written = write_all(args.out, passages(), fmt=args.out_format)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    for path, reason in failed:
        print(f"unreadable: {path}: {reason}", file=sys.stderr)
    line = (f"extract: read {len(files)} document(s) = {len(per_file)} extracted + {len(failed)} unreadable; "
            f"wrote {written} passages to {args.out}")
    if duplicates[0]:
        line += f" ({duplicates[0]} duplicate passage(s) already seen in another document left out)"
    if failed:
        line += f"; unreadable documents listed in {rejects.path}"
    print(line, file=sys.stderr)
    if not per_file:
        if Path(args.out).is_file():
            Path(args.out).unlink()
        raise GradesetError("no document could be read; nothing was written")
    if failed and args.strict:
        return 2
    return 0
