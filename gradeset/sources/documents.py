"""Documents (PDF, DOCX, Markdown, text) read into *blocks*: paragraphs with page and heading.

A block is the smallest unit the passage splitter packs: one paragraph (or one heading
line) and where it came from. Readers raise :class:`DocumentError` with a message a
person can act on (scanned PDF -> run OCR; encrypted -> decrypt; corrupt DOCX -> re-save)
so that ``gradeset extract`` can list the file and carry on with the others.

Heavy libraries (pypdf, python-docx) are imported inside the readers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gradeset.errors import GradesetError

PDF_EXT = {".pdf"}
DOCX_EXT = {".docx"}
MD_EXT = {".md", ".markdown", ".mdown"}
TEXT_EXT = {".txt", ".text", ".rst", ""}


class DocumentError(GradesetError):
    """One document cannot be read; the message says why and what to do."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{path}: {message}")


@dataclass
class Block:
    text: str
    page: int | None = None
    heading: str | None = None  # the section heading this block belongs to
    is_heading: bool = False
    level: int = 0  # heading level (1 = top) for heading blocks


def document_kind(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext in PDF_EXT:
        return "pdf"
    if ext in DOCX_EXT:
        return "docx"
    if ext in MD_EXT:
        return "markdown"
    if ext in TEXT_EXT:
        return "text"
    if ext == ".doc":
        raise DocumentError(path, "old binary .doc files are not supported; save it as .docx")
    raise DocumentError(path, f"unsupported document type {ext!r} (PDF, DOCX, Markdown or text)")


def read_blocks(path: str | os.PathLike) -> tuple[list[Block], list[str]]:
    """Blocks of one document and notes (e.g. pages without text); raises DocumentError."""
    p = Path(path)
    if not p.exists():
        raise DocumentError(p, "no such file")
    if p.is_dir():
        raise DocumentError(p, "is a folder; pass the documents inside it")
    kind = document_kind(p)
    if p.stat().st_size == 0:
        raise DocumentError(p, "the file is empty")
    if kind == "pdf":
        return read_pdf(p)
    if kind == "docx":
        return read_docx(p), []
    text = _read_text(p)
    if kind == "markdown":
        return markdown_blocks(text), []
    return text_blocks(text), []


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    if b"\x00" in data[:4096]:
        raise DocumentError(p, "looks binary, not text (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ---------------------------------------------------------------- text and markdown

_PARA_SPLIT = re.compile(r"\n\s*\n")


def _clean(text: str) -> str:
    return re.sub(r"[ \t\f\v]+", " ", text).strip()


def text_blocks(text: str, page: int | None = None, heading: str | None = None) -> list[Block]:
    """Paragraphs separated by blank lines; line breaks inside a paragraph become spaces."""
    out = []
    for para in _PARA_SPLIT.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        para = _join_lines(para)
        if para:
            out.append(Block(para, page=page, heading=heading))
    return out


def _join_lines(para: str) -> str:
    lines = [ln.strip() for ln in para.split("\n")]
    joined = ""
    for ln in lines:
        if not ln:
            continue
        if joined.endswith("-") and len(joined) > 1 and joined[-2].isalpha() and ln[:1].islower():
            joined = joined[:-1] + ln  # de-hyphenate "exam-\nple"
        else:
            joined = f"{joined} {ln}" if joined else ln
    return _clean(joined)


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^(```|~~~)")


def markdown_blocks(text: str) -> list[Block]:
    """ATX (``# H``) and setext headings start sections; code fences stay one block."""
    blocks: list[Block] = []
    heading: str | None = None
    para: list[str] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def flush() -> None:
        if para:
            joined = _join_lines("\n".join(para))
            if joined:
                blocks.append(Block(joined, heading=heading))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line.strip()):
            flush()
            fence = line.strip()[:3]
            code = [line]
            i += 1
            while i < len(lines):
                code.append(lines[i])
                if lines[i].strip().startswith(fence):
                    break
                i += 1
            blocks.append(Block("\n".join(code).strip(), heading=heading))
            i += 1
            continue
        m = _MD_HEADING.match(line)
        if m:
            flush()
            heading = _clean(m.group(2))
            blocks.append(Block(heading, heading=heading, is_heading=True, level=len(m.group(1))))
            i += 1
            continue
        if para and len(para) == 1 and _MD_SETEXT.match(line) and para[0].strip():
            heading = _clean(para[0])
            para.clear()
            blocks.append(Block(heading, heading=heading, is_heading=True, level=1 if line.strip()[0] == "=" else 2))
            i += 1
            continue
        if not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


# ---------------------------------------------------------------- DOCX


def read_docx(p: Path) -> list[Block]:
    """Paragraphs in order; a paragraph whose style is Title/Heading N starts a section."""
    import zipfile

    from gradeset.errors import require

    docx = require("docx", "documents", "reading DOCX files")
    try:
        doc = docx.Document(str(p))
    except zipfile.BadZipFile as exc:
        raise DocumentError(p, f"not a valid DOCX (it is not a zip archive: {exc}); "
                               "the file is corrupt or not really .docx — re-save it from Word") from exc
    except KeyError as exc:
        raise DocumentError(p, f"not a valid DOCX (missing part {exc}); re-save it from Word") from exc
    except Exception as exc:  # lxml errors, package errors: all mean a broken file
        if type(exc).__name__ == "PackageNotFoundError":
            raise DocumentError(p, "not a valid DOCX (not a zip package): the file is corrupt or not really "
                                   ".docx; re-save it from Word") from exc
        raise DocumentError(p, f"cannot read DOCX ({type(exc).__name__}: {exc}); re-save it from Word") from exc
    blocks: list[Block] = []
    heading: str | None = None
    body = doc.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = docx.text.paragraph.Paragraph(child, doc)
            text = _clean(para.text)
            if not text:
                continue
            level = _docx_heading_level(para)
            if level:
                heading = text
                blocks.append(Block(text, heading=heading, is_heading=True, level=level))
            else:
                blocks.append(Block(text, heading=heading))
        elif tag == "tbl":
            table = docx.table.Table(child, doc)
            rows = []
            for row in table.rows:
                cells = [_clean(c.text) for c in row.cells]
                rows.append(" | ".join(cells))
            text = "\n".join(r for r in rows if r.strip(" |"))
            if text:
                blocks.append(Block(text, heading=heading))
    return blocks


def _docx_heading_level(para) -> int:
    try:
        name = (para.style.name or "") if para.style is not None else ""
    except Exception:
        name = ""
    low = name.lower()
    if low == "title":
        return 1
    m = re.match(r"heading\s*(\d+)", low)
    if m:
        return int(m.group(1))
    return 0


# ---------------------------------------------------------------- PDF


class _PdfWarnings:
    """Collect pypdf's log warnings (e.g. "EOF marker not found") as notes naming the file,
    instead of letting them print bare lines that do not say which document they concern."""

    def __enter__(self):
        import logging

        self.messages: list[str] = []
        self.logger = logging.getLogger("pypdf")
        outer = self

        class _Handler(logging.Handler):
            def emit(self, record) -> None:
                msg = record.getMessage()
                if msg not in outer.messages and len(outer.messages) < 5:
                    outer.messages.append(msg)

        self.handler = _Handler(level=logging.WARNING)
        self.saved = (self.logger.propagate, self.logger.level)
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        if self.logger.level == logging.NOTSET or self.logger.level > logging.WARNING:
            self.logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.propagate, level = self.saved
        self.logger.setLevel(level)


def read_pdf(p: Path) -> tuple[list[Block], list[str]]:
    """See :func:`_read_pdf`; pypdf's warnings become notes naming the file."""
    with _PdfWarnings() as warnings:
        blocks, notes = _read_pdf(p)
    notes += [f"{p}: pypdf: {m} (damaged file? the text may be incomplete)" for m in warnings.messages]
    return blocks, notes


def _read_pdf(p: Path) -> tuple[list[Block], list[str]]:
    """Text of every page (pypdf), paragraphs by blank lines; headings from the outline.

    A PDF whose pages yield no text at all has no text layer (a scan): that is an error
    telling the user to OCR it, not an empty success. Pages without text in an
    otherwise textual PDF are listed in the notes.
    """
    from gradeset.errors import require

    pypdf = require("pypdf", "documents", "reading PDF files")
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(str(p))
    except (PdfReadError, ValueError, OSError) as exc:
        raise DocumentError(p, f"not a readable PDF ({exc})") from exc
    except Exception as exc:
        raise DocumentError(p, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if reader.is_encrypted:
        ok = False
        try:
            ok = bool(reader.decrypt(""))  # owner-password-only PDFs open with an empty password
        except Exception:
            ok = False
        if not ok:
            raise DocumentError(p, "the PDF is encrypted (password protected); decrypt it first, "
                                   "e.g. qpdf --password=PW --decrypt in.pdf out.pdf")
    try:
        pages = list(reader.pages)
    except FileNotDecryptedError as exc:
        raise DocumentError(p, "the PDF is encrypted (password protected); decrypt it first") from exc
    except Exception as exc:
        raise DocumentError(p, f"cannot read the PDF's pages ({type(exc).__name__}: {exc})") from exc
    if not pages:
        raise DocumentError(p, "the PDF has no pages")
    outline = _pdf_outline(reader)
    texts: list[str] = []
    fonts = _FontLines()
    for number, page in enumerate(pages, 1):
        fonts.page = number
        try:
            texts.append(page.extract_text(visitor_text=None if outline else fonts.visit) or "")
        except Exception as exc:
            raise DocumentError(p, f"cannot extract text from page {number} ({type(exc).__name__}: {exc})") from exc
    # Without bookmarks, lines set in a clearly larger font than the body are headings.
    font_headings = {} if outline else fonts.headings()
    blocks: list[Block] = []
    empty_pages: list[int] = []
    heading: str | None = None
    for number, text in enumerate(texts, 1):
        for title, level in outline.get(number, []):
            heading = title
            blocks.append(Block(title, page=number, heading=title, is_heading=True, level=level))
        if not text.strip():
            empty_pages.append(number)
            continue
        text = _drop_title_lines(text, [t for t, _ in outline.get(number, [])])
        titles = font_headings.get(number, {})
        if not titles:
            blocks.extend(_pdf_page_blocks(text, number, heading))
            continue
        chunk: list[str] = []
        for line in text.split("\n"):
            key = _clean(line).lower()
            if key in titles:
                blocks.extend(_pdf_page_blocks("\n".join(chunk), number, heading))
                chunk = []
                heading = _clean(line)
                blocks.append(Block(heading, page=number, heading=heading, is_heading=True, level=titles[key]))
            else:
                chunk.append(line)
        blocks.extend(_pdf_page_blocks("\n".join(chunk), number, heading))
    if len(empty_pages) == len(pages):
        raise DocumentError(p, f"no text layer on any of its {len(pages)} page(s): a scanned or image-only "
                               "PDF; run OCR first (e.g. ocrmypdf in.pdf out.pdf)")
    notes = []
    if empty_pages:
        notes.append(f"{p}: page(s) {_ranges(empty_pages)} have no text layer (scanned?) and were skipped")
    return blocks, notes


class _FontLines:
    """Lines of text with their font size, gathered by pypdf's text visitor."""

    def __init__(self) -> None:
        self.page = 0
        self.lines: dict[tuple[int, float], list] = {}  # (page, y) -> [text, max size]
        self.chars_by_size: dict[float, int] = {}

    def visit(self, text, cm, tm, font_dict, font_size) -> None:
        if not text or not text.strip():
            return
        try:
            scale = abs(float(tm[3]) * float(cm[3])) or 1.0
            size = round(float(font_size) * scale * 2) / 2
            y = round(float(tm[5]) * float(cm[3]) + float(cm[5]), 1)
        except (TypeError, ValueError, IndexError):
            return
        line = self.lines.setdefault((self.page, y), ["", 0.0])
        line[0] += text
        line[1] = max(line[1], size)
        self.chars_by_size[size] = self.chars_by_size.get(size, 0) + len(text.strip())

    def headings(self) -> dict[int, dict[str, int]]:
        """page -> {heading text (lowercase): level} for lines set larger than the body text."""
        if not self.chars_by_size:
            return {}
        body = max(self.chars_by_size.items(), key=lambda kv: kv[1])[0]
        big = sorted({size for (_, _), (_, size) in self.lines.items() if size >= body * 1.2}, reverse=True)
        levels = {size: min(i + 1, 6) for i, size in enumerate(big)}
        out: dict[int, dict[str, int]] = {}
        for (page, _), (text, size) in self.lines.items():
            t = _clean(text)
            if size in levels and 2 <= len(t) <= 150 and len(t.split()) <= 20 and re.search(r"[^\W\d_]", t):
                out.setdefault(page, {})[t.lower()] = levels[size]
        return out


def _drop_title_lines(text: str, titles: list[str]) -> str:
    """Remove the lines that print a bookmark's title: the heading field already holds it."""
    if not titles:
        return text
    wanted = {_clean(t).lower() for t in titles}
    lines = text.split("\n")
    return "\n".join(ln for ln in lines if _clean(ln).lower() not in wanted)


def _pdf_page_blocks(text: str, page: int, heading: str | None) -> list[Block]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _PARA_SPLIT.search(text):
        return text_blocks(text, page=page, heading=heading)
    # No blank lines (common in pypdf output): a line ending a sentence ends a paragraph.
    paras: list[list[str]] = [[]]
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        paras[-1].append(s)
        if re.search(r"[.!?:\"\u201d)]$", s):
            paras.append([])
    out = []
    for para in paras:
        joined = _join_lines("\n".join(para))
        if joined:
            out.append(Block(joined, page=page, heading=heading))
    return out


def _pdf_outline(reader) -> dict[int, list[tuple[str, int]]]:
    """Page number -> [(title, level)] from the PDF's bookmarks (empty when it has none)."""
    out: dict[int, list[tuple[str, int]]] = {}

    def walk(items, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                number = reader.get_destination_page_number(item) + 1
                title = _clean(str(item.title))
            except Exception:
                continue
            if title:
                out.setdefault(number, []).append((title, level))

    try:
        walk(reader.outline, 1)
    except Exception:
        return {}
    return out


def _ranges(numbers: list[int]) -> str:
    parts = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
