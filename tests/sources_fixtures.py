"""Document fixtures written by the tests themselves (DOCX, PDFs with and without text)."""

from __future__ import annotations

from pathlib import Path

PARADOX = ("The paradox of growth is that you invest in emerging markets for their growth, but you "
           "don't make money in the fast-growing places. You make money in the cheapest places. Our data "
           "shows that from 2008-2018 the cheapest countries returned 19.9% annually vs 14.9% for the most "
           "expensive.")
VALUE = ("There are two main problems with buying Value: you get caught in value traps, and you get in and "
         "out too early. Combining value with quality and momentum sets guardrails that help avoid these "
         "problems.")
RUSSIA = ("We got Russia wrong because we trusted the official numbers. The lesson is to check cash flows "
          "against reported earnings before buying a cheap market.")


def make_docx(path: Path) -> Path:
    import docx

    doc = docx.Document()
    doc.add_heading("Life Lessons", level=0)
    doc.add_heading("Growth", level=1)
    doc.add_paragraph(PARADOX)
    doc.add_heading("Value", level=1)
    doc.add_paragraph(VALUE)
    doc.add_paragraph(RUSSIA)
    doc.save(str(path))
    return path


def make_pdf(path: Path, pages: list[tuple[str, str]]) -> Path:
    """A text-layer PDF: one (heading, body) per page, the heading also a bookmark."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for i, (heading, body) in enumerate(pages):
        key = f"h{i}"
        c.bookmarkPage(key)
        c.addOutlineEntry(heading, key, level=0)
        text = c.beginText(72, 720)
        text.setFont("Helvetica-Bold", 14)
        text.textLine(heading)
        text.setFont("Helvetica", 10)
        text.textLine("")
        words = body.split()
        line = ""
        for w in words:
            if len(line) + len(w) > 80:
                text.textLine(line)
                line = w
            else:
                line = f"{line} {w}".strip()
        if line:
            text.textLine(line)
        c.drawText(text)
        c.showPage()
    c.save()
    return path


def make_image_only_pdf(path: Path, n_pages: int = 2) -> Path:
    """A 'scanned' PDF: pages with drawings only, no text layer."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for i in range(n_pages):
        c.rect(72, 72 + 10 * i, 300, 400, fill=1)
        c.showPage()
    c.save()
    return path


def make_encrypted_pdf(src: Path, path: Path, password: str = "secret") -> Path:
    import pypdf

    reader = pypdf.PdfReader(str(src))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    with open(path, "wb") as fh:
        writer.write(fh)
    return path
