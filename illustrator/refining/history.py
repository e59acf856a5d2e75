"""The stored sheets of a session: what a turn continues from, a character from another session, a lock by click."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from illustrator.errors import InvalidInput, NotFound
from illustrator.plan import ChatMessage
from illustrator.refining.cast import bring_character, bring_request
from illustrator.refining.changes import apply_changes, lock_op
from illustrator.refining.sheet import Sheet
from storage.repository import SessionRepository


@dataclass(frozen=True)
class SheetContext:
    """The sheet a turn starts from, the sheets before it (oldest first, the base's parent last) and the messages."""

    sheet: dict[str, Any] | None
    earlier: tuple[dict[str, Any], ...]
    conversation: list[ChatMessage]


def sheet_context(
    repo: SessionRepository,
    session_id: str,
    base_id: int | None,
    conversation: list[ChatMessage],
) -> SheetContext:
    """What the refiner needs from storage for a turn continuing from picture `base_id` (None: a first picture)."""
    base = repo.get_picture(base_id) if base_id is not None else None
    pictures = [p for p in repo.list_pictures(session_id, limit=None) if base is not None and p.id < base.id]
    # undo goes back to the picture this one was made from: on a branch, that is not the one drawn last
    pictures.sort(key=lambda p: (base is not None and p.id == base.parent_id, p.id))
    earlier = tuple(json.loads(p.sheet_json) for p in pictures if p.sheet_json)
    sheet = json.loads(base.sheet_json) if base is not None and base.sheet_json else None
    request = bring_request(conversation[-1].content) if conversation else None
    if request is not None:  # "bring Kael from 'Crow City'": Kael joins the cast, then is drawn
        source = sheet_of_session(repo, request.session_title, request.name)
        sheet = bring_character(Sheet.from_dict(sheet) if sheet else Sheet(), source, request.name).to_dict()
        wish = f"now draw {request.name} {request.rest}".strip()
        conversation = [*conversation[:-1], ChatMessage("user", wish)]
    return SheetContext(sheet, earlier, conversation)


def sheet_of_session(repo: SessionRepository, title: str, name: str) -> Sheet:
    """The newest sheet of the session called `title` in which `name` is in the cast; NotFound otherwise."""
    wanted = " ".join(title.lower().split())
    chats = [c for c in repo.list_sessions(limit=None, query=title) if " ".join(c.title.lower().split()) == wanted]
    if not chats:
        raise NotFound(f"There is no session called “{title}”.")
    for picture in reversed(repo.list_pictures(chats[0].id, limit=None)):
        if picture.sheet_json:
            sheet = Sheet.from_dict(json.loads(picture.sheet_json))
            if sheet.find(name) is not None:
                return sheet
    raise NotFound(f"“{title}” has no {name} on its story sheet.")


def set_lock(repo: SessionRepository, picture_id: int, subject: str, attribute: str, locked: bool) -> dict[str, Any]:
    """Lock or unlock one attribute on a stored picture's sheet (`subject`: a cast key or "scene"); the new sheet."""
    picture = repo.get_picture(picture_id)
    if not picture.sheet_json:
        raise NotFound("That picture has no story sheet.")
    result = apply_changes(Sheet.from_dict(json.loads(picture.sheet_json)), [lock_op(subject, attribute, locked)])
    if result.refused:
        raise InvalidInput(result.refused[0])
    sheet = result.sheet.to_dict()
    picture.sheet_json = json.dumps(sheet)
    return sheet
