"""Bringing set-aside pictures back: each PNG says which session and turn it belongs to, and how it was drawn.

The start-up check sets aside picture files that no row knows (it never deletes a picture). Every picture this app
saves carries its session id and turn in its own JSON chunk, and its prompt and settings in the `parameters` text,
so it can be put back: into its session (made again, titled "Recovered pictures", when the database lost it), shown
by that turn's reply (or by a new reply saying it was recovered). A file that cannot be read stays set aside.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from illustrator.errors import IllustratorError, InvalidInput
from storage.db import Database
from storage.files import PictureFiles
from storage.pngmeta import parse_parameters_text, read_png_metadata
from storage.repository import next_picture_number
from storage.tables import TITLE_MAX_CHARS, ChatSession, Message, Picture

logger = logging.getLogger(__name__)

RECOVERED_TITLE = "Recovered pictures"
RECOVERED_REPLY = "This picture was recovered from its file."
MAX_TEXT_CHARS = 20_000  # as for an import: our own files never come near it


@dataclass(frozen=True)
class RecoveredPictures:
    """How many set-aside pictures went back into their sessions, and how many stay set aside."""

    restored: int
    left: int


def recover_pictures(db: Database, files: PictureFiles) -> RecoveredPictures:
    """Put every set-aside picture back into its session (file first, then its row); say how many."""
    restored = left = 0
    root = files.set_aside_root
    for path in sorted(root.rglob("*.png")) if root.is_dir() else []:
        try:
            _restore(db, files, path)
        except (IllustratorError, OSError) as e:
            logger.warning("The set-aside picture %s stays set aside: %s", path, e)
            left += 1
        else:
            restored += 1
    if restored or left:
        logger.info("Recovered %d set-aside picture(s); %d stay set aside in %s", restored, left, root)
    return RecoveredPictures(restored, left)


def _restore(db: Database, files: PictureFiles, path: Path) -> None:
    # 1. what the file says about itself
    metadata = read_png_metadata(path)
    ours, text = metadata["illustrator"] or {}, metadata["parameters"] or ""
    session_id, turn = ours.get("session_id"), ours.get("turn")
    if (
        not isinstance(session_id, str)
        or not session_id.isalnum()
        or len(session_id) > 32
        or len(text) > MAX_TEXT_CHARS
    ):
        raise InvalidInput("it does not say which session it belongs to")
    values = parse_parameters_text(text)
    data = path.read_bytes()
    with Image.open(path) as image:
        width, height = image.size

    # 2. the file back under the pictures folder (its old name when free), before any row points at it
    relative = path.relative_to(files.set_aside_root)
    target = files.root / relative
    if target.exists():
        target = files.root / relative.with_name(f"{hashlib.sha256(data).hexdigest()[:32]}.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)

    # 3. its row, and the reply that shows it
    try:
        with db.transaction() as session:
            _add_rows(
                session,
                session_id,
                turn,
                values,
                ours,
                target.relative_to(files.root).as_posix(),
                data,
                (width, height),
            )
    except Exception:
        os.replace(target, path)  # no row points at it: back where it was
        raise


def _add_rows(
    session: Session,
    session_id: str,
    turn: Any,
    values: dict[str, Any],
    ours: dict[str, Any],
    file_name: str,
    data: bytes,
    size: tuple[int, int],
) -> None:
    chat = session.get(ChatSession, session_id)
    if chat is None:
        chat = ChatSession(id=session_id, title=RECOVERED_TITLE[:TITLE_MAX_CHARS])
        session.add(chat)
        session.flush()
    latest = session.scalar(select(Message.turn).where(Message.session_id == session_id).order_by(Message.turn.desc()))
    if not isinstance(turn, int) or turn < 1:
        turn = (latest or 0) + 1
    plan = ours.get("plan")
    action = plan.get("action") if isinstance(plan, dict) else None
    action = action if isinstance(action, str) and len(action) <= 16 else "new"
    parent_id = ours.get("parent_id") if isinstance(ours.get("parent_id"), int) else None
    picture = Picture(
        session_id=session_id,
        number=next_picture_number(session, session_id),
        turn=turn,
        file_name=file_name,
        width=size[0],
        height=size[1],
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        seed=values["seed"] if isinstance(values["seed"], int) else 0,
        steps=values["steps"] if isinstance(values["steps"], int) else 0,
        guidance_scale=values["guidance_scale"] if isinstance(values["guidance_scale"], float) else 0.0,
        strength=values["strength"],
        action=action,
        model=str(values["model"] or "")[:255],
        prompt=values["prompt"],
        negative_prompt=values["negative_prompt"],
        parent_id=parent_id if parent_id is not None and session.get(Picture, parent_id) is not None else None,
    )
    session.add(picture)
    session.flush()
    reply = session.scalar(
        select(Message).where(
            Message.session_id == session_id,
            Message.turn == turn,
            Message.role == "assistant",
            Message.picture_id.is_(None),
        )
    )
    if reply is None:
        reply = Message(session_id=session_id, turn=turn, role="assistant", content=RECOVERED_REPLY)
        session.add(reply)
    reply.picture_id = picture.id
