"""Documents -> passages: DOCX/PDF/Markdown/text fixtures written here; bad documents listed."""

from __future__ import annotations

import orjson
import pytest
from sources_fixtures import (
    PARADOX,
    RUSSIA,
    VALUE,
    make_docx,
    make_encrypted_pdf,
    make_image_only_pdf,
    make_pdf,
)

from gradeset.cli import main
from gradeset.sources.documents import DocumentError, markdown_blocks, read_blocks, text_blocks
from gradeset.sources.passages import content_id, document_passages, estimate_tokens, split_passages


def _rows(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    make_docx(d / "lessons.docx")
    make_pdf(d / "essay.pdf", [("Growth", PARADOX), ("Value", VALUE + " " + RUSSIA)])
    (d / "notes.md").write_text(f"# Notes\n\n## Growth\n\n{PARADOX}\n\n## Russia\n\n{RUSSIA}\n", encoding="utf-8")
    (d / "plain.txt").write_text(f"{VALUE}\n\n{RUSSIA}\n", encoding="utf-8")
    make_image_only_pdf(d / "scan.pdf")
    make_encrypted_pdf(d / "essay.pdf", d / "locked.pdf")
    (d / "broken.docx").write_bytes(b"\x13\x37 not a zip " * 40)
    return d


def test_docx_headings_come_from_paragraph_styles(docs):
    blocks, _ = read_blocks(docs / "lessons.docx")
    headings = [(b.text, b.level) for b in blocks if b.is_heading]
    assert headings == [("Life Lessons", 1), ("Growth", 1), ("Value", 1)]
    body = [(b.heading, b.text) for b in blocks if not b.is_heading]
    assert body == [("Growth", PARADOX), ("Value", VALUE), ("Value", RUSSIA)]


def test_pdf_keeps_pages_and_outline_headings(docs):
    rows, _ = document_passages("essay.pdf", read_blocks(docs / "essay.pdf")[0], max_tokens=400, overlap=0)
    assert [(r["page"], r["heading"]) for r in rows] == [(1, "Growth"), (2, "Value")]
    assert rows[0]["text"] == PARADOX  # the printed heading line is not repeated in the text
    assert "value traps" in rows[1]["text"] and "Russia wrong" in rows[1]["text"]


def test_markdown_sections_and_code_fences():
    md = "Intro line.\n\n# A\n\ntext a\n\n```py\nx = 1\n\ny = 2\n```\n\nB title\n-------\nbody b\n"
    blocks = markdown_blocks(md)
    assert [(b.text, b.is_heading, b.heading) for b in blocks] == [
        ("Intro line.", False, None), ("A", True, "A"), ("text a", False, "A"),
        ("```py\nx = 1\n\ny = 2\n```", False, "A"), ("B title", True, "B title"), ("body b", False, "B title")]


def test_text_joins_wrapped_lines_and_dehyphenates():
    blocks = text_blocks("The cheap-\nest places\nwin.\n\nSecond para.")
    assert [b.text for b in blocks] == ["The cheapest places win.", "Second para."]


def test_passages_respect_budget_overlap_and_headings():
    from gradeset.sources.documents import Block

    sentences = [f"Sentence number {i} talks about value." for i in range(40)]
    blocks = [Block("H1", heading="H1", is_heading=True)]
    blocks += [Block(" ".join(sentences[i:i + 4]), heading="H1") for i in range(0, 40, 4)]
    blocks += [Block("H2", heading="H2", is_heading=True), Block("Short tail section.", heading="H2")]
    passages = list(split_passages(blocks, max_tokens=60, overlap=20))
    assert all(p["tokens"] <= 60 for p in passages)
    h1 = [p for p in passages if p["heading"] == "H1"]
    assert len(h1) >= 4
    # every sentence is in some passage, and consecutive passages share their boundary text
    joined = " ".join(p["text"] for p in h1)
    assert all(s in joined for s in sentences)
    for a, b in zip(h1, h1[1:]):
        tail = b["text"].split("\n\n")[0]
        assert a["text"].endswith(tail) and 0 < estimate_tokens(tail) <= 20
    assert passages[-1]["heading"] == "H2" and passages[-1]["text"] == "Short tail section."


def test_overlong_paragraph_is_split_by_sentence_then_words():
    from gradeset.sources.documents import Block

    words = " ".join(f"w{i}" for i in range(200))  # one 200-token "sentence"
    out = list(split_passages([Block(words)], max_tokens=50, overlap=0))
    assert all(p["tokens"] <= 50 for p in out)
    assert " ".join(p["text"] for p in out).split() == words.split()


def test_content_id_is_the_text_hash(docs):
    rows, _ = document_passages("a", read_blocks(docs / "lessons.docx")[0])
    rows2, _ = document_passages("b", read_blocks(docs / "notes.md")[0])
    assert rows[0]["id"] == content_id(PARADOX) == rows2[0]["id"]  # same text, same id, any file


@pytest.mark.parametrize("name, needle", [
    ("scan.pdf", "no text layer"), ("locked.pdf", "encrypted"), ("broken.docx", "not a valid DOCX")])
def test_bad_documents_raise_clear_errors(docs, name, needle):
    with pytest.raises(DocumentError, match=needle):
        read_blocks(docs / name)


def test_unsupported_and_empty_files(tmp_path):
    (tmp_path / "a.xlsx").write_bytes(b"x")
    (tmp_path / "e.md").write_bytes(b"")
    with pytest.raises(DocumentError, match="unsupported document type"):
        read_blocks(tmp_path / "a.xlsx")
    with pytest.raises(DocumentError, match="empty"):
        read_blocks(tmp_path / "e.md")


def test_extract_cli_lists_bad_files_and_keeps_going(docs, tmp_path, capsys):
    out = tmp_path / "passages.jsonl"
    files = [docs / n for n in ("lessons.docx", "scan.pdf", "essay.pdf", "locked.pdf", "broken.docx",
                                "notes.md", "plain.txt")]
    assert main(["extract", *map(str, files), "--out", str(out), "--keep-duplicates"]) == 0
    err = capsys.readouterr().err
    rows = _rows(out)
    assert {r["file"].rsplit("/", 1)[-1] for r in rows} == {"lessons.docx", "essay.pdf", "notes.md", "plain.txt"}
    assert [r["index"] for r in rows if r["file"].endswith("lessons.docx")] == [0, 1]
    assert all(r["id"] == content_id(r["text"]) for r in rows)
    rejects = _rows(tmp_path / "passages.jsonl.rejects.jsonl")
    assert sorted(r["source"].rsplit("/", 1)[-1] for r in rejects) == ["broken.docx", "locked.pdf", "scan.pdf"]
    assert "read 7 document(s) = 4 extracted + 3 unreadable" in err
    assert "OCR" in err and "decrypt" in err


def test_extract_cli_strict_and_all_failed(docs, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert main(["extract", str(docs / "lessons.docx"), str(docs / "scan.pdf"), "--out", str(out),
                 "--strict"]) == 2
    assert out.exists()  # the good document is still written
    out2 = tmp_path / "q.jsonl"
    assert main(["extract", str(docs / "scan.pdf"), str(docs / "broken.docx"), "--out", str(out2)]) == 2
    assert "no document could be read" in capsys.readouterr().err
    assert not out2.exists()
    assert len(_rows(tmp_path / "q.jsonl.rejects.jsonl")) == 2


def test_extract_cli_expands_folders(docs, tmp_path):
    out = tmp_path / "all.jsonl"
    assert main(["extract", str(docs), "--out", str(out), "--max-tokens", "30", "--overlap", "5"]) == 0
    rows = _rows(out)
    assert rows and all(r["tokens"] <= 30 for r in rows)
    assert main(["extract", str(docs / "notes.md"), "--out", str(out), "--max-tokens", "30",
                 "--overlap", "30"]) == 2  # overlap must be below the budget


def test_pdf_with_some_pages_scanned_is_read_with_a_note(tmp_path):
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    path = tmp_path / "mixed.pdf"
    c = canvas.Canvas(str(path), pagesize=letter)
    c.drawString(72, 720, "First page has text about value traps.")
    c.showPage()
    c.rect(72, 72, 300, 300, fill=1)  # an image-like page with no text
    c.showPage()
    c.drawString(72, 720, "Third page has text too.")
    c.showPage()
    c.save()
    blocks, notes = read_blocks(path)
    assert [(b.page, b.text) for b in blocks] == [(1, "First page has text about value traps."),
                                                 (3, "Third page has text too.")]
    assert notes == [f"{path}: page(s) 2 have no text layer (scanned?) and were skipped"]


def test_damaged_files_are_clear_errors_without_stray_log_lines(tmp_path, capsys):
    import zipfile

    (tmp_path / "junk.pdf").write_bytes(b"garbage, not a PDF")
    with zipfile.ZipFile(tmp_path / "zip.docx", "w") as z:
        z.writestr("a.txt", "a zip, but not a Word document")
    with pytest.raises(DocumentError, match="not a readable PDF"):
        read_blocks(tmp_path / "junk.pdf")
    with pytest.raises(DocumentError, match="not a valid DOCX"):
        read_blocks(tmp_path / "zip.docx")
    assert capsys.readouterr().err == ""  # pypdf's own warnings do not leak as bare lines


def test_pdf_without_bookmarks_gets_headings_from_font_size(tmp_path):
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    path = tmp_path / "nobookmarks.pdf"
    c = canvas.Canvas(str(path), pagesize=letter)
    y = 720
    for title, body in [("Growth Paradox", "Fast growth does not mean returns. Cheap markets won."),
                        ("Value Traps", "Cheap can be junk. Use quality and momentum.")]:
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, y, title)
        c.setFont("Helvetica", 10)
        c.drawString(72, y - 24, body)
        y -= 54
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(72, 720, "More about value traps on page two.")
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 690, "Russia")
    c.setFont("Helvetica", 10)
    c.drawString(72, 670, "We got Russia wrong.")
    c.showPage()
    c.save()
    rows, _ = document_passages("x.pdf", read_blocks(path)[0], max_tokens=400, overlap=0, min_tokens=1)
    assert [(r["heading"], r["page"], r["text"]) for r in rows] == [
        ("Growth Paradox", 1, "Fast growth does not mean returns. Cheap markets won."),
        ("Value Traps", 1, "Cheap can be junk. Use quality and momentum.\n\nMore about value traps on page two."),
        ("Russia", 2, "We got Russia wrong.")]
    assert rows[1]["page_end"] == 2


def test_extract_leaves_out_passages_already_seen_in_another_document(docs, tmp_path, capsys):
    out = tmp_path / "d.jsonl"
    assert main(["extract", str(docs / "lessons.docx"), str(docs / "essay.pdf"), "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["lessons.docx", "lessons.docx", "essay.pdf"]
    assert "(1 duplicate passage(s) already seen in another document left out)" in capsys.readouterr().err
    assert main(["extract", str(docs / "lessons.docx"), str(docs / "essay.pdf"), "--out", str(out),
                 "--keep-duplicates"]) == 0
    assert len(_rows(out)) == 4


def test_extract_counts_with_a_real_tokenizer(docs, tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    out = tmp_path / "tok.jsonl"
    assert main(["extract", str(docs / "lessons.docx"), "--out", str(out), "--max-tokens", "40", "--overlap", "8",
                 "--tokenizer", str(tiny_model_dir), "--min-tokens", "1"]) == 0
    rows = _rows(out)
    assert len(rows) > 2
    for r in rows:
        assert r["tokens"] == len(tok.encode(r["text"], add_special_tokens=False)) <= 40
