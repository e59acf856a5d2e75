"""A session as a storyboard (HTML and Markdown: messages, prompts and pictures in order) and as a zip."""

from __future__ import annotations

import html
import logging
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from illustrator.credits import credit_line
from illustrator.errors import InvalidInput, StorageError
from illustrator.labels import download_name, drawn_from, picture_label, slug
from illustrator.refining.sheet import summary_lines
from illustrator.service import MessageView, PictureView, SessionView

logger = logging.getLogger(__name__)

PictureUrl = Callable[[PictureView], str]

_STYLE = """
body { font: 16px/1.5 Georgia, 'Times New Roman', serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; background: #fdfcf9; }
h1 { font-weight: normal; margin-bottom: 0.2rem; }
.note { color: #777; font-size: 0.9rem; margin-top: 0; }
.turn { border-top: 1px solid #e6e2d8; padding: 1rem 0; }
.writer { font-style: italic; margin: 0 0 0.6rem; }
.writer::before { content: "✎ "; font-style: normal; color: #999; }
figure { margin: 0.6rem 0; }
figure img { max-width: 100%; border-radius: 6px; display: block; }
figcaption { font: 0.85rem/1.4 system-ui, sans-serif; color: #555; margin-top: 0.4rem; }
figcaption .prompt { color: #222; }
.sheet { margin: 0.3rem 0 0; padding: 0; list-style: none; }
.sheet li::before { content: "· "; color: #999; }
""".strip()


def picture_caption_text(picture: PictureView) -> str:
    """The one-line details of a picture: its number, action, what it was drawn from, seed, steps, model and credit."""
    source = drawn_from(picture)
    parent = f", {source}" if source else ""
    strength = f", strength {picture.strength:.2f}" if picture.strength is not None else ""
    star = " ★" if picture.starred else ""
    return (
        f"Picture {picture_label(picture)}{star} · {picture.action}{parent}{strength} · seed {picture.seed} · "
        f"{picture.steps} step{'s' if picture.steps != 1 else ''} · {picture.width}x{picture.height} · {picture.model}"
        f" · {credit_line(picture.artists)}"
    )


def _turns(view: SessionView) -> list[list[MessageView]]:
    turns: dict[int, list[MessageView]] = {}
    for message in view.messages:
        turns.setdefault(message.turn, []).append(message)
    return [turns[turn] for turn in sorted(turns)]


def storyboard_html(view: SessionView, picture_url: PictureUrl, *, note: str = "") -> str:
    """The session as a self-contained HTML page; every text is escaped, pictures come from `picture_url`."""
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        f"<title>{e(view.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(view.title)}</h1>",
    ]
    if note:
        parts.append(f'<p class="note">{e(note)}</p>')
    for messages in _turns(view):
        parts.append('<section class="turn">')
        for message in messages:
            if message.role == "user":
                parts.append(f'<p class="writer">{e(message.content)}</p>')
                continue
            parts.append(f'<p class="reply">{e(message.content)}</p>')
            picture = message.picture
            if picture is None:
                continue
            negative = f"<br>Negative prompt: {e(picture.negative_prompt)}" if picture.negative_prompt.strip() else ""
            parts.append(
                f'<figure id="picture-{picture.number}"><img src="{e(picture_url(picture))}" alt="{e(picture.prompt)}" '
                f'width="{picture.width}" height="{picture.height}" loading="lazy">'
                f"<figcaption>{e(picture_caption_text(picture))}<br>"
                f'Prompt: <span class="prompt">{e(picture.prompt)}</span>{negative}{_sheet_html(message)}'
                "</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def drawn_sheet_lines(message: MessageView) -> list[str]:
    """The story sheet a reply's picture was drawn from (its plan's; edits and locks made later are the next
    picture's), in a few plain lines."""
    sheet = (message.plan or {}).get("sheet")
    if not isinstance(sheet, dict):
        sheet = message.picture.sheet if message.picture is not None else None
    return summary_lines(sheet)


def _sheet_html(message: MessageView) -> str:
    """A picture's story sheet as a short list (each subject with its look, then the scene), escaped."""
    lines = drawn_sheet_lines(message)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<ul class="sheet" aria-label="Story sheet">{items}</ul>'


def _markdown_text(text: str) -> str:
    """Text that Markdown shows as written (its punctuation escaped, line breaks kept)."""
    escaped = re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)
    lines = [re.sub(r"^(\s*)([#>+\-]|\d+\.)", r"\1\\\2", line) for line in escaped.split("\n")]
    return "  \n".join(lines)


def storyboard_markdown(view: SessionView, picture_url: PictureUrl) -> str:
    """The session as Markdown: the writer's messages as quotes, each picture with its prompt."""
    lines = [f"# {_markdown_text(view.title)}", ""]
    for messages in _turns(view):
        for message in messages:
            if message.role == "user":
                lines += [f"> {_markdown_text(message.content)}", ""]
                continue
            lines += [_markdown_text(message.content), ""]
            picture = message.picture
            if picture is not None:
                lines += [
                    f"![Picture {picture_label(picture)}]({picture_url(picture)})",
                    "",
                    f"*{_markdown_text(picture_caption_text(picture))}*  ",
                    f"Prompt: {_markdown_text(picture.prompt)}",
                ]
                if picture.negative_prompt.strip():
                    lines[-1] += "  "
                    lines.append(f"Negative prompt: {_markdown_text(picture.negative_prompt)}")
                sheet = drawn_sheet_lines(message)
                if sheet:
                    lines += ["", "Story sheet:", *(f"- {_markdown_text(line)}" for line in sheet)]
                lines.append("")
        lines += ["---", ""]
    return "\n".join(lines)


def only_starred(view: SessionView) -> SessionView:
    """The session with only the turns whose picture is starred (the writer's favourites), in their order."""
    kept = {m.turn for m in view.messages if m.picture is not None and m.picture.starred}
    messages = [m for m in view.messages if m.turn in kept and (m.picture is None or m.picture.starred)]
    current = view.current_picture if view.current_picture is not None and view.current_picture.starred else None
    return replace(view, messages=messages, current_picture=current)


def export_session(view: SessionView, folder: Path, *, starred: bool = False) -> Path:
    """Write the session as `<title>.zip` in `folder`: storyboard.html, storyboard.md and the original PNGs, named
    like `crow-city-03.png`; with `starred`, only the starred pictures (`<title>-starred.zip`)."""
    # 1. the pictures in the order they appear, with the file each one will have inside the zip
    if starred:
        view = only_starred(view)
        if not any(m.picture is not None for m in view.messages):
            raise InvalidInput("No picture of this session is starred yet: star some in the gallery first.")
    name = slug(view.title) + ("-starred" if starred else "")
    pictures: list[PictureView] = []
    for message in view.messages:
        if message.picture is not None and message.picture.id not in {p.id for p in pictures}:
            pictures.append(message.picture)
    inside = {p.id: f"pictures/{download_name(view.title, p.number)}" for p in pictures}

    def relative(picture: PictureView) -> str:
        return inside[picture.id]

    # 2. write the zip under a temp name, then rename it: a failure never leaves half a zip behind
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.zip"
    temp = folder / f".{name}.{secrets.token_hex(4)}.zip.tmp"
    try:
        with zipfile.ZipFile(temp, "w") as archive:
            archive.writestr(f"{name}/storyboard.html", storyboard_html(view, relative), zipfile.ZIP_DEFLATED)
            archive.writestr(f"{name}/storyboard.md", storyboard_markdown(view, relative), zipfile.ZIP_DEFLATED)
            for picture in pictures:
                if picture.path.is_file():  # PNGs are compressed already: store them as they are, metadata and all
                    archive.write(picture.path, f"{name}/{inside[picture.id]}", zipfile.ZIP_STORED)
                else:
                    logger.warning("Picture id %d is missing from disk; the storyboard links to nothing", picture.id)
        os.replace(temp, target)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise StorageError(f"Could not write the export: {e.strerror or e}.") from e
    return target
