"""Seeded subsampling of a large table: gradeset load (streamed reservoir) vs the incumbents.

Seed 003 loads a dataset with ``datasets`` and subsamples with ``shuffle(seed).select``;
the common alternative is pandas ``read_parquet().sample(n)``. Both hold the whole table
(pandas in memory; datasets memory-maps, but builds an index over every row and
writes an Arrow cache). ``gradeset load --sample N`` streams record batches and keeps N
rows. Each contender runs in its own process so peak RSS is its own.

Second table: document extraction. Seed 000's incumbent is a plain text dump (PyPDF2's
successor pypdf, ``page.extract_text()`` for every page); ``gradeset extract`` adds
headings (bookmarks or font size), pages, paragraphs, token-budget passages with overlap.

Run: python benchmarks/sources_bench.py [--rows 1000000] [--sample 1000] [--pdf-pages 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GRADESET = """
import resource, sys, time
t = time.perf_counter()
from gradeset.cli import main
code = main(["load", sys.argv[1], "--out", sys.argv[2], "--sample", sys.argv[3], "--seed", "1", "-q"])
assert code == 0
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

PANDAS = """
import resource, sys, time
t = time.perf_counter()
import pandas as pd
df = pd.read_parquet(sys.argv[1]).sample(n=int(sys.argv[3]), random_state=1)
cols = [c for c in ("prompt", "question", "query") if c in df.columns]
df = df.rename(columns={cols[0]: "prompt"})
df.to_json(sys.argv[2], orient="records", lines=True)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

DATASETS = """
import resource, sys, time, tempfile
t = time.perf_counter()
import datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset("parquet", data_files=sys.argv[1], split="train",
                           cache_dir=tempfile.mkdtemp())
ds = ds.shuffle(seed=1).select(range(int(sys.argv[3])))
ds = ds.rename_column("question", "prompt")
ds.to_json(sys.argv[2])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_table(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    chunk = 100_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        ids = range(start, start + n)
        table = pa.table({
            "question": [f"Problem {i}: a shop sells {i % 97} apples at {i % 13} dollars each; what is the total "
                         f"revenue after a discount of {i % 7} dollars? Explain every step." for i in ids],
            "answer": [str((i % 97) * (i % 13) - i % 7) for i in ids],
            "solution": [f"Multiply {i % 97} by {i % 13}, then subtract {i % 7}." * 3 for i in ids],
            "data_source": ["synthetic"] * n,
        })
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def run(code: str, src: Path, out: Path, k: int) -> tuple[float, float]:
    env = {**os.environ, "GRADESET_NO_PROGRESS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(out), str(k)], capture_output=True,
                          text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    seconds, rss_kb = proc.stdout.split()[-2:]
    return float(seconds), int(rss_kb) / 1024


def make_pdfs(folder: Path, pages: int) -> list[Path]:
    import textwrap

    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    body = ("The paradox of growth is that you invest in emerging markets for their growth, but you don't make "
            "money in the fast-growing places. You make money in the cheapest places. ") * 12
    out = []
    for bookmarks in (True, False):
        path = folder / f"doc-{'bm' if bookmarks else 'font'}.pdf"
        c = canvas.Canvas(str(path), pagesize=letter)
        for i in range(pages):
            if bookmarks:
                c.bookmarkPage(f"p{i}")
                c.addOutlineEntry(f"Section {i}", f"p{i}", level=0)
            c.setFont("Helvetica-Bold", 14)
            c.drawString(72, 740, f"Section {i}")
            t = c.beginText(72, 710)
            t.setFont("Helvetica", 10)
            for line in textwrap.wrap(body, 90):
                t.textLine(line)
            c.drawText(t)
            c.showPage()
        c.save()
        out.append(path)
    return out


def bench_pdf(pages: int) -> dict:
    import pypdf

    from gradeset.sources.documents import read_blocks
    from gradeset.sources.passages import document_passages

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_pdfs(Path(tmp), pages):
            t = time.perf_counter()
            reader = pypdf.PdfReader(str(path))
            text = "\n".join(p.extract_text() for p in reader.pages)
            raw = time.perf_counter() - t
            t = time.perf_counter()
            blocks, _ = read_blocks(path)
            rows, _ = document_passages(str(path), blocks)
            ours = time.perf_counter() - t
            results[path.stem] = {"pages": pages, "pypdf_text_dump_s": round(raw, 2), "gradeset_extract_s": round(ours, 2),
                                  "passages": len(rows), "headings": len({r["heading"] for r in rows}),
                                  "text_chars": len(text)}
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--pdf-pages", type=int, default=200)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.parquet"
        make_table(src, args.rows)
        size_mb = src.stat().st_size / 2**20
        results = {}
        for name, code in (("gradeset load --sample", GRADESET), ("pandas sample", PANDAS),
                           ("datasets shuffle+select", DATASETS)):
            try:
                secs, rss = run(code, src, Path(tmp) / f"{name.split()[0]}.jsonl", args.sample)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{name}: failed: {exc}", file=sys.stderr)
                continue
            results[name] = {"seconds": round(secs, 2), "peak_rss_mb": round(rss, 1)}
    print(f"\nsample {args.sample} of {args.rows:,} rows (parquet {size_mb:.0f} MB)\n")
    print(f"{'contender':28} {'seconds':>9} {'peak RSS MB':>12}")
    for name, r in results.items():
        print(f"{name:28} {r['seconds']:>9.2f} {r['peak_rss_mb']:>12.1f}")
    pdf = bench_pdf(args.pdf_pages)
    print(f"\n{'PDF (' + str(args.pdf_pages) + ' pages)':28} {'pypdf dump s':>12} {'gradeset s':>11} "
          f"{'passages':>9} {'headings':>9}")
    for name, r in pdf.items():
        label = "bookmarks" if name.endswith("bm") else "no bookmarks (font sizes)"
        print(f"{label:28} {r['pypdf_text_dump_s']:>12.2f} {r['gradeset_extract_s']:>11.2f} {r['passages']:>9} "
              f"{r['headings']:>9}")
    out = ROOT / "benchmarks" / "results" / "sources.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "sample": args.sample, "parquet_mb": round(size_mb, 1),
                               "results": results, "pdf": pdf}, indent=2) + "\n")


if __name__ == "__main__":
    main()
