"""The illustrated manuscript: the writer's text with each beat's picture at its beat, a title page and credits."""

from __future__ import annotations

import html
import logging
import os
import secrets
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from illustrator.credits import GENERAL_OUTPUT, credit_line
from illustrator.errors import InvalidInput, StorageError
from illustrator.labels import picture_label, slug
from illustrator.refining.sheet import summary_lines
from illustrator.service import PictureView, SessionView
from illustrator.story import Beat

logger = logging.getLogger(__name__)

FORMATS = ("epub", "pdf", "html", "zip")


@dataclass(frozen=True)
class Illustration:
    """A picture as the manuscript shows it: the file, its number and its credit."""

    picture_id: int
    path: Path
    width: int
    height: int
    alt: str
    credit: str
    artists: tuple[str, ...]
    sheet: tuple[str, ...] = ()  # its story sheet in a few plain lines (refining.sheet.summary_lines), for the credits
    label: str = ""  # "#3": how the writer knows the picture (illustrator.labels)

    @property
    def file_name(self) -> str:
        """Its name inside an export ("images/picture-12.png")."""
        return f"images/picture-{self.picture_id}.png"


@dataclass(frozen=True)
class Section:
    """A run of the text, with the illustration placed before it (None: text only)."""

    text: str
    illustration: Illustration | None = None


@dataclass(frozen=True)
class Manuscript:
    """The whole book: title, sections in reading order, and the credits page's lines."""

    title: str
    sections: list[Section]
    credits: list[str]

    @property
    def illustrations(self) -> list[Illustration]:
        """Every illustration once, in reading order."""
        seen: dict[int, Illustration] = {}
        for section in self.sections:
            if section.illustration is not None:
                seen.setdefault(section.illustration.picture_id, section.illustration)
        return list(seen.values())

    @property
    def text(self) -> str:
        """The writer's text, as the manuscript holds it."""
        return "\n\n".join(section.text for section in self.sections if section.text)


def _illustration(picture: PictureView) -> Illustration:
    return Illustration(
        picture.id,
        picture.path,
        picture.width,
        picture.height,
        picture.prompt,
        credit_line(picture.artists),
        picture.artists,
        tuple(summary_lines(picture.sheet)),
        picture_label(picture),
    )


def build_manuscript(view: SessionView, passage: str | None = None, beats: Sequence[Beat] = ()) -> Manuscript:
    """The manuscript of a session: its story's passage with each beat's picture, or else its turns in order."""
    pictures = {m.picture.id: m.picture for m in view.messages if m.picture is not None}
    if passage is not None:
        sections = _story_sections(passage, beats, pictures)
    else:
        sections = _session_sections(view)
    if not any(section.text.strip() for section in sections):
        raise InvalidInput("This session has no text to export yet.")
    return Manuscript(view.title, sections, _credits(sections))


def _story_sections(passage: str, beats: Sequence[Beat], pictures: dict[int, PictureView]) -> list[Section]:
    """The passage cut at its beats (in the text's order, whatever the drawing order), each with its picture."""
    sections: list[Section] = []
    position = 0
    for beat in sorted(beats, key=lambda b: b.start):
        if beat.start < position:  # overlapping beats: the text is shown once
            continue
        if passage[position : beat.start].strip():
            sections.append(Section(passage[position : beat.start].strip()))
        picture = pictures.get(beat.picture_id) if beat.picture_id is not None else None
        if beat.picture_id is not None and picture is None:
            logger.warning("The picture chosen for a beat (#%d) is no longer in the session", beat.picture_id)
        sections.append(Section(passage[beat.start : beat.end].strip(), _illustration(picture) if picture else None))
        position = beat.end
    if passage[position:].strip():
        sections.append(Section(passage[position:].strip()))
    return sections


def _session_sections(view: SessionView) -> list[Section]:
    """A session without a story: each wish, with the picture its turn ended on."""
    sections: list[Section] = []
    wish, shown = "", None
    for message in [*view.messages, None]:
        if message is None or message.role == "user":
            if wish or shown:
                sections.append(Section(wish, _illustration(shown) if shown else None))
            if message is not None:
                wish, shown = message.content, None
        elif message.picture is not None:
            shown = message.picture
    return sections


def _credits(sections: Sequence[Section]) -> list[str]:
    lines = []
    illustrations = [s.illustration for s in sections if s.illustration is not None]
    artists: list[str] = []
    for number, illustration in enumerate(illustrations, start=1):
        sheet = f" Story sheet: {' · '.join(illustration.sheet)}." if illustration.sheet else ""
        lines.append(f"Illustration {number} (picture {illustration.label}): {illustration.credit}.{sheet}")
        artists += [name for name in illustration.artists if name not in artists]
    if artists:
        lines.insert(0, f"Illustrations in the style of named artists: {', '.join(artists)}.")
    elif illustrations:
        lines.insert(0, f"All illustrations: {GENERAL_OUTPUT.lower()} (no named artist's style).")
    lines.append("Illustrated with Illustrator, drawn by an image model from the writer's words.")
    return lines


# --- HTML ---------------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 18px/1.6 Georgia, 'DejaVu Serif', serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; background: #fdfcf9; }
.title-page { text-align: center; padding: 4rem 0 3rem; border-bottom: 1px solid #e6e2d8; }
.title-page h1 { font-weight: normal; font-size: 2.4rem; margin: 0; }
.beat { margin: 2rem 0; }
figure { margin: 1.5rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; border-radius: 4px; }
figcaption { font: 0.8rem/1.4 system-ui, sans-serif; color: #666; margin-top: 0.3rem; }
.credits { border-top: 1px solid #e6e2d8; margin-top: 3rem; font-size: 0.9rem; color: #444; }
""".strip()


def paragraphs_html(text: str) -> str:
    """The text as escaped paragraphs, its line breaks kept (a poem's lines stay lines)."""
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    return "\n".join(f"<p>{'<br/>'.join(html.escape(line) for line in block.split(chr(10)))}</p>" for block in blocks)


def figure_html(illustration: Illustration, src: str) -> str:
    """An illustration with its credit as the caption."""
    e = html.escape
    return (
        f'<figure><img src="{e(src)}" alt="{e(illustration.alt)}" width="{illustration.width}" '
        f'height="{illustration.height}"/><figcaption>{e(illustration.credit)}</figcaption></figure>'
    )


def credits_html(manuscript: Manuscript) -> str:
    """The credits page's body."""
    items = "\n".join(f"<p>{html.escape(line)}</p>" for line in manuscript.credits)
    return f'<section class="credits" id="credits"><h2>Credits</h2>\n{items}</section>'


def manuscript_html(manuscript: Manuscript, src: Callable[[Illustration], str] | None = None) -> str:
    """The manuscript as one HTML page: every text escaped, images at relative paths."""
    src = src or (lambda illustration: illustration.file_name)
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>{e(manuscript.title)}</title><style>{_STYLE}</style></head><body>",
        f'<section class="title-page"><h1>{e(manuscript.title)}</h1><p>An illustrated manuscript</p></section>',
    ]
    for section in manuscript.sections:
        parts.append('<section class="beat">')
        if section.illustration is not None:
            parts.append(figure_html(section.illustration, src(section.illustration)))
        parts.append(paragraphs_html(section.text))
        parts.append("</section>")
    parts += [credits_html(manuscript), "</body></html>"]
    return "\n".join(parts)


# --- files --------------------------------------------------------------------------------------------------------


def _copy_images(manuscript: Manuscript, folder: Path) -> None:
    for illustration in manuscript.illustrations:
        target = folder / illustration.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if illustration.path.is_file():
            shutil.copyfile(illustration.path, target)
        else:
            logger.warning("Picture #%d is missing from disk; the manuscript shows no image", illustration.picture_id)


def write_html(manuscript: Manuscript, folder: Path) -> Path:
    """Write `index.html` and its `images/` into `folder` (made if missing); returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    _copy_images(manuscript, folder)
    page = folder / "index.html"
    page.write_text(manuscript_html(manuscript), encoding="utf-8")
    return page


def _write_zip(manuscript: Manuscript, target: Path) -> None:
    from illustrator.ebook import write_epub, write_pdf

    name = slug(manuscript.title)
    work = target.parent / f".{name}.{secrets.token_hex(4)}.d"
    try:
        write_html(manuscript, work / "html")
        write_epub(manuscript, work / f"{name}.epub")
        write_pdf(manuscript, work / f"{name}.pdf")
        with zipfile.ZipFile(target, "w") as archive:
            for path in sorted(p for p in work.rglob("*") if p.is_file()):
                compress = zipfile.ZIP_STORED if path.suffix in (".png", ".epub", ".pdf") else zipfile.ZIP_DEFLATED
                archive.write(path, f"{name}/{path.relative_to(work).as_posix()}", compress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_manuscript(manuscript: Manuscript, folder: Path, fmt: str) -> Path:
    """Write the manuscript in one format into `folder`; a failure leaves no half-written file behind."""
    from illustrator.ebook import write_epub, write_pdf

    if fmt not in FORMATS:
        raise InvalidInput(f"The format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    name = slug(manuscript.title)
    if fmt == "html":
        target = folder / name
        temp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            write_html(manuscript, temp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(temp, target)
        except OSError as e:
            shutil.rmtree(temp, ignore_errors=True)
            raise StorageError(f"Could not write the manuscript: {e.strerror or e}.") from e
        return target / "index.html"
    target = folder / f"{name}.{fmt}"
    temp = folder / f".{name}.{secrets.token_hex(4)}.{fmt}.tmp"
    writers = {"epub": write_epub, "pdf": write_pdf, "zip": _write_zip}
    try:
        writers[fmt](manuscript, temp)
        os.replace(temp, target)
    except OSError as e:
        raise StorageError(f"Could not write the manuscript: {e.strerror or e}.") from e
    finally:
        temp.unlink(missing_ok=True)
    return target
