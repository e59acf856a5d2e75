"""How pictures are named to the writer, in one place: "#3" (the number within its session), "your picture", and the
file name of a download ("crow-city-03.png"). The database id stays internal: nothing a writer reads shows it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from illustrator.service import PictureView

YOUR_PICTURE = "your picture"


def picture_label(picture: PictureView) -> str:
    """The picture's name: "#3", its number within its session."""
    return f"#{picture.number}"


def source_label(picture: PictureView) -> str | None:
    """What the picture was drawn from: "#2" (a picture of the session), "your picture" (the writer's own upload), or
    None (drawn new)."""
    if picture.own_start:
        return YOUR_PICTURE
    if picture.parent_number is not None:
        return f"#{picture.parent_number}"
    return None


def drawn_from(picture: PictureView) -> str:
    """ "from picture #2" or "from your picture", or "" for a picture drawn new."""
    source = source_label(picture)
    if source is None:
        return ""
    return f"from {source}" if source == YOUR_PICTURE else f"from picture {source}"


def slug(title: str) -> str:
    """A file-name-safe version of a title ("The mermaid's cave" -> "the-mermaid-s-cave")."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].strip("-")
    return cleaned or "session"


def download_name(title: str, number: int) -> str:
    """The file name a picture downloads as: its session's title and its number ("crow-city-03.png")."""
    return f"{slug(title)}-{number:02d}.png"
