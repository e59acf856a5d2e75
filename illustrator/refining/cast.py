"""Characters carried between sessions: "bring Kael from 'Crow City'" copies Kael's look into this session's sheet."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from illustrator.errors import NotFound
from illustrator.refining.sheet import Sheet

_BRING = re.compile(
    r"\bbring\s+(?P<name>.+?)\s+(?:over\s+)?from\s+(?:the\s+session\s+)?[\"'“‘](?P<title>[^\"'”’]+)[\"'”’]\s*(?P<rest>.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BringRequest:
    """A wish to bring a character from another session: who, from which session (its title), and the rest."""

    name: str
    session_title: str
    rest: str


def bring_request(text: str) -> BringRequest | None:
    """The request in a message ("bring Kael from 'Crow City' into the tavern"), or None."""
    match = _BRING.search(text)
    if match is None:
        return None
    return BringRequest(match["name"].strip(" ,."), match["title"].strip(), match["rest"].strip(" ,."))


def bring_character(sheet: Sheet, source: Sheet, name: str) -> Sheet:
    """`sheet` with the character `name` from `source` in its cast, with every attribute and lock it has there."""
    character = source.find(name)
    if character is None:
        raise NotFound(f"There is no {name} in that session's story sheet.")
    existing = sheet.find(name)
    if existing is not None:  # this session already knows someone by that name: theirs is replaced
        sheet = replace(
            sheet,
            cast=tuple(s for s in sheet.cast if s.key != existing.key),
            visible=tuple(k for k in sheet.visible if k != existing.key),
            focus=None if sheet.focus == existing.key else sheet.focus,
        )
    return sheet.with_subject(character)
