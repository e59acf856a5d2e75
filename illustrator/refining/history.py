"""The stored sheets of a session: what a turn continues from, a character from another session, a lock by click."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from illustrator.errors import InvalidInput, NotFound
from illustrator.plan import ChatMessage, Plan
from illustrator.refining.cast import bring_character, bring_request
from illustrator.refining.changes import _MARKUP, MAX_VALUE_CHARS, SCENE, Op, apply_changes, lock_op
from illustrator.refining.sheet import SCENE_FIELDS, Sheet, Value, normalise
from illustrator.rules import _ADJECTIVES
from storage.repository import SessionRepository
from storage.tables import Message

_NOT_NOUNS = {"pose", "holding", "expression", "mood", "age", "build"}  # attributes whose value is not "<adj> <name>"


@dataclass(frozen=True)
class SheetContext:
    """The sheet a turn starts from, the sheets before it (oldest first, the base's parent last) and the messages."""

    sheet: dict[str, Any] | None
    earlier: tuple[dict[str, Any], ...]
    conversation: list[ChatMessage]
    drawn: dict[str, Any] | None = None  # the sheet the base picture was drawn from, when it was edited since


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
    drawn = drawn_sheet(repo, base.session_id, base.id) if base is not None else None
    edited = drawn is not None and sheet is not None and _values(drawn) != _values(sheet)
    return SheetContext(sheet, earlier, conversation, drawn if edited else None)


def _values(data: dict[str, Any]) -> Sheet | None:
    """A sheet without its locks: what a picture shows (a lock changes nothing to draw)."""
    try:
        sheet = Sheet.from_dict(data)
    except InvalidInput:
        return None
    cast = tuple(replace(s, attributes={k: Value(v.text) for k, v in s.attributes.items()}) for s in sheet.cast)
    return replace(sheet, cast=cast, scene={k: Value(v.text) for k, v in sheet.scene.items()})


def drawn_sheet(repo: SessionRepository, session_id: str, picture_id: int) -> dict[str, Any] | None:
    """The sheet a picture was drawn from (its turn's plan), before any edit in the panel or lock in chat."""
    for message in repo.list_messages(session_id):
        if message.picture_id == picture_id and message.plan_json:
            sheet = json.loads(message.plan_json).get("sheet")
            return sheet if isinstance(sheet, dict) else None
    return None


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
    return change_sheet(repo, picture_id, [lock_op(subject, attribute, locked)])


def change_sheet(repo: SessionRepository, picture_id: int, ops: Sequence[Op]) -> dict[str, Any]:
    """Apply `ops` to a stored picture's sheet (what the next turn starts from); InvalidInput when one is refused."""
    picture = repo.get_picture(picture_id)
    if not picture.sheet_json:
        raise NotFound("That picture has no story sheet.")
    result = apply_changes(Sheet.from_dict(json.loads(picture.sheet_json)), ops)
    if result.refused:
        raise InvalidInput(result.refused[0])
    sheet = result.sheet.to_dict()
    picture.sheet_json = json.dumps(sheet)
    return sheet


def panel_op(sheet: dict[str, Any], subject: str | None, attribute: str, value: str | None) -> Op:
    """The operation an edit in the sheet panel makes: set `attribute` to `value` (None: remove it); InvalidInput
    for a value that cannot be one. A bare colour for an attribute named after a thing gets its noun ("silver" for
    hair -> "silver hair"); `subject` None is the subject in focus."""
    name = "_".join(normalise(attribute).split())
    if not name or len(name) > 40:
        raise InvalidInput("Choose an attribute, or type a short name for a new one.")
    if subject == SCENE and name not in SCENE_FIELDS:
        fields = ", ".join(f.replace("_", " ") for f in SCENE_FIELDS)
        raise InvalidInput(f"The scene has no “{attribute}”; it has {fields}.")
    key = subject if subject is not None else Sheet.from_dict(sheet).focus
    if key is None:
        raise InvalidInput("This picture's sheet has no one in focus to change.")
    if value is None:
        current = Sheet.from_dict(sheet)
        holder = current.scene if key == SCENE else getattr(current.subject(key), "attributes", {})
        if name not in holder:
            raise InvalidInput(f"There is no {attribute} on the sheet to remove.")
        return Op("remove", key, name)
    text = " ".join(value.split())
    if not text:
        raise InvalidInput("Type the new value first (or press Remove).")
    if len(text) > MAX_VALUE_CHARS or _MARKUP.search(text):
        raise InvalidInput(f"A value is a short description: at most {MAX_VALUE_CHARS} characters, without markup.")
    words = normalise(text).split()
    if subject != SCENE and all(w in _ADJECTIVES for w in words) and name.isalpha() and name not in _NOT_NOUNS:
        text = f"{text} {name}"
    return Op("set", key, name, text)


def save_sheet_turn(repo: SessionRepository, session_id: str, picture_id: int, plan: Plan) -> Message:
    """A turn that only changed the sheet (a lock said in chat): the picture keeps the new sheet; a reply alone."""
    picture = repo.get_picture(picture_id)
    if plan.sheet is not None:
        picture.sheet_json = json.dumps(plan.sheet)
    return repo.add_message(session_id, "assistant", plan.reply, plan_json=json.dumps(plan.to_dict()))
