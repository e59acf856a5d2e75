"""The manuscript as an EPUB (ebooklib) and as a PDF (fpdf2, with a font on disk that carries the writer's scripts)."""

from __future__ import annotations

import html
import io
import logging
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from illustrator.errors import StorageError
from illustrator.manuscript import Manuscript, Section, credits_html, figure_html, paragraphs_html

if TYPE_CHECKING:
    from fpdf import FPDF

logger = logging.getLogger(__name__)

FONT_FOLDERS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
# Fonts with wide coverage (Latin, Greek, Cyrillic, Hebrew, Arabic, ...), best first; Debian: fonts-dejavu-core
BODY_FONTS = ("DejaVuSerif.ttf", "DejaVuSans.ttf", "NotoSerif-Regular.ttf", "NotoSans-Regular.ttf", "FreeSerif.ttf")
# Tried for what the body font lacks (Devanagari, ...), when installed
FALLBACK_FONTS = ("NotoSansDevanagari-Regular.ttf", "unifont.ttf")
# Fonts that carry Chinese, Japanese and Korean, best first; read (a large file) only when the text has such script.
# Debian: fonts-wqy-zenhei (the Makefile's `fonts` target installs it), or fonts-noto-cjk, fonts-droid-fallback.
CJK_FONTS = (
    "wqy-zenhei.ttc",
    "NotoSansCJK-Regular.ttc",
    "NotoSerifCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "DroidSansFallbackFull.ttf",
    "wqy-microhei.ttc",
)
NO_FONT = (
    "No font for the PDF was found on this computer; install DejaVu or Noto fonts "
    "(on Debian or Ubuntu: apt-get install fonts-dejavu-core) and export again."
)
NO_CJK_FONT = (
    "The text has Chinese, Japanese or Korean writing, and no font on this computer carries it; install one "
    "(on Debian or Ubuntu: apt-get install fonts-wqy-zenhei) and export the PDF again. EPUB and HTML need no font."
)
_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3000-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
# Scripts that need shaping: Hebrew, Arabic, Syriac, Thaana, the Indic scripts, Thai, Lao, Tibetan, Myanmar, ...
_COMPLEX_SCRIPT = re.compile("[\u0590-\u08ff\u0900-\u0dff\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\ufb1d-\ufefc]")
_HEADING = re.compile(r"^\s*(?:chapter|part|book|canto|act)\b[^\n]{0,60}$", re.I)


def _fonts_on_disk(folders: Sequence[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in folder.rglob("*"):
                found.setdefault(path.name, path)
    return found


def find_fonts(folders: Sequence[Path] = FONT_FOLDERS, *, cjk: bool = False) -> tuple[Path, list[Path]]:
    """The body font and the fallback fonts found on disk (with `cjk`, one that carries Chinese, Japanese and Korean
    first); StorageError with a plain sentence when there is none."""
    found = _fonts_on_disk(folders)
    body = next((found[name] for name in BODY_FONTS if name in found), None)
    if body is None:
        raise StorageError(NO_FONT)
    others = [found[name] for name in (*BODY_FONTS, *FALLBACK_FONTS) if name in found and found[name] != body]
    if cjk:
        wide = next((found[name] for name in CJK_FONTS if name in found), None)
        if wide is None:
            raise StorageError(NO_CJK_FONT)
        others.insert(0, wide)
    return body, others


def has_cjk(text: str) -> bool:
    """True when the text holds Chinese, Japanese or Korean writing (the PDF then needs a font that carries it)."""
    return _CJK.search(text) is not None


# --- EPUB ---------------------------------------------------------------------------------------------------------


def _chapters(manuscript: Manuscript) -> list[tuple[str, list[Section]]]:
    """The sections grouped into chapters at the text's own headings ("Chapter Two"); one chapter when it has none."""
    chapters: list[tuple[str, list[Section]]] = []
    for section in manuscript.sections:
        first_line = section.text.strip().split("\n", 1)[0]
        if _HEADING.match(first_line) or not chapters:
            chapters.append((first_line.strip() if _HEADING.match(first_line) else manuscript.title, []))
        chapters[-1][1].append(section)
    return chapters


def _page(title: str, body: str) -> str:
    return f"<html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"


def write_epub(manuscript: Manuscript, path: Path) -> None:
    """Write the manuscript as an EPUB 3: a title page, its chapters with the pictures, and the credits."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(f"urn:uuid:{uuid.uuid4()}")
    book.set_title(manuscript.title)
    book.set_language("en")
    style = epub.EpubItem(
        uid="style",
        file_name="style.css",
        media_type="text/css",
        content=b"figure{margin:1em 0;text-align:center} img{max-width:100%} figcaption{font-size:.8em;color:#555}",
    )
    book.add_item(style)
    pages = []
    title = epub.EpubHtml(title="Title page", file_name="title.xhtml", lang="en")
    title.content = _page(manuscript.title, f"<h1>{html.escape(manuscript.title)}</h1><p>An illustrated manuscript</p>")
    pages.append(title)
    for number, (name, sections) in enumerate(_chapters(manuscript), start=1):
        chapter = epub.EpubHtml(title=name, file_name=f"chapter-{number}.xhtml", lang="en")
        body = []
        for section in sections:
            if section.illustration is not None:
                body.append(figure_html(section.illustration, section.illustration.file_name))
            body.append(paragraphs_html(section.text))
        chapter.content = _page(name, "\n".join(body))
        chapter.add_item(style)
        pages.append(chapter)
    credits = epub.EpubHtml(title="Credits", file_name="credits.xhtml", lang="en")
    credits.content = _page("Credits", credits_html(manuscript))
    pages.append(credits)
    for page in pages:
        book.add_item(page)
    for illustration in manuscript.illustrations:
        if illustration.path.is_file():
            content = illustration.path.read_bytes()
            book.add_item(epub.EpubImage(file_name=illustration.file_name, media_type="image/png", content=content))
    book.toc = pages
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *pages]
    epub.write_epub(str(path), book)


# --- PDF ----------------------------------------------------------------------------------------------------------


def write_pdf(manuscript: Manuscript, path: Path, *, font_folders: Sequence[Path] = FONT_FOLDERS) -> None:
    """Write the manuscript as an A5 PDF: title page, text with the pictures at their beats, credits page."""
    from fpdf import FPDF

    # 1. fonts that carry the writer's scripts, found on disk
    everything = manuscript.title + manuscript.text + "".join(manuscript.credits)
    body, fallbacks = find_fonts(font_folders, cjk=has_cjk(everything))
    pdf = FPDF(format=(148, 210))  # A5 in millimetres
    pdf.set_title(manuscript.title)
    pdf.set_creator("Illustrator")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("Body", "", str(body))
    names = []
    for number, fallback in enumerate(fallbacks):
        try:
            pdf.add_font(f"Fallback{number}", "", str(fallback))  # a collection (.ttc): its first face
            names.append(f"Fallback{number}")
        except Exception as e:  # noqa: BLE001 - a font fpdf2 cannot read is skipped, never fatal
            logger.warning("Font %s cannot be used in PDFs: %s", fallback, e)
    if names:
        pdf.set_fallback_fonts(names)
    if _COMPLEX_SCRIPT.search(everything):
        pdf.set_text_shaping(True)  # HarfBuzz: right-to-left in reading order, joined letters; slow, so only then

    # 2. the title page
    pdf.add_page()
    pdf.set_font("Body", size=24)
    pdf.set_y(pdf.h / 3)
    pdf.multi_cell(0, 12, manuscript.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Body", size=11)
    pdf.multi_cell(0, 8, "An illustrated manuscript", align="C", new_x="LMARGIN", new_y="NEXT")

    # 3. the text, each picture before its beat
    pdf.add_page()
    for section in manuscript.sections:
        if section.illustration is not None and section.illustration.path.is_file():
            _picture(pdf, section)
        pdf.set_font("Body", size=11)
        pdf.multi_cell(0, 6, section.text.strip(), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)

    # 4. the credits page
    pdf.add_page()
    pdf.set_font("Body", size=16)
    pdf.multi_cell(0, 10, "Credits", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Body", size=10)
    for line in manuscript.credits:
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.output(str(path))


def _picture(pdf: FPDF, section: Section) -> None:
    """The beat's picture, centred, at most 90 mm tall, with its credit beneath."""
    illustration = section.illustration
    assert illustration is not None
    width = min(pdf.epw, 90 * illustration.width / max(illustration.height, 1))
    height = width * illustration.height / max(illustration.width, 1)
    if pdf.will_page_break(height + 8):
        pdf.add_page()
    x = pdf.l_margin + (pdf.epw - width) / 2
    pdf.image(_as_jpeg(illustration.path), x=x, w=width, h=height)
    pdf.set_font("Body", size=8)
    pdf.multi_cell(0, 5, illustration.credit, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _as_jpeg(path: Path) -> io.BytesIO:
    """The picture as JPEG bytes: a PDF embeds those as they are, where a PNG is decoded and compressed again (slow)."""
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").save(buffer, format="JPEG", quality=92)
    buffer.seek(0)
    return buffer
