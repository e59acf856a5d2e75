"""The story sheet's cast in story mode's beats: a character keeps the look the chat or an earlier beat gave them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from illustrator.refining.sheet import Sheet
from illustrator.story import MAX_BEAT_PROMPT_CHARS, Beat, CastMember

# The sheet's attributes that are a character's look (kept from beat to beat), not what they do in one picture
_LOOKS = frozenset(
    "hair eyes eye beard moustache mustache skin face freckles scar scars tattoo tattoos ears wings horns tail fur "
    "feathers scales build cloak coat raincoat jacket dress gown robe robes cape hood hat cap helmet crown scarf shawl "
    "shirt blouse tunic vest trousers pants skirt boots shoes gloves armour armor uniform apron glasses spectacles "
    "necklace earrings mask collar belt sash suit kimono sweater jumper overalls".split()
)


def cast_from_sheet(sheet: dict[str, Any] | None) -> list[CastMember]:
    """The story sheet's cast as beats use it: each character's name (the one the writer gave) and look."""
    if not sheet:
        return []
    cast = []
    for subject in Sheet.from_dict(sheet).cast:
        # the rules keep a given name as an attribute of its own ("girl" with "mara: mara"): that is the name
        names = [k for k, v in subject.attributes.items() if k != subject.key and v.text.lower() == k and k.isalpha()]
        name = names[0].title() if names else subject.name
        if not name or name.isdigit():
            continue
        looks = [v.text for k, v in subject.attributes.items() if k == subject.key or k in _LOOKS]
        # what only repeats the name ("lighthouse keeper" for the keeper) is no look
        looks = [look for look in looks if not look.lower().endswith(name.lower())]
        cast.append(CastMember(name, ", ".join(looks)))
    return cast


def with_looks(beat: Beat, cast: Sequence[CastMember]) -> str:
    """The beat's prompt with the look of each cast member it names, for the terms the prompt does not hold yet.

    The look goes right after the character's name (or first, with the name, when only the beat's text names them):
    the text encoder reads 77 tokens and cuts the rest, so what keeps a character recognisable comes before the
    scene's details and the style."""
    prompt = beat.prompt
    for member in cast:
        name = re.compile(rf"(?<!\w){re.escape(member.name)}(?!\w)", re.I)
        if not name.search(f"{beat.text} {prompt}"):
            continue
        missing = [term for term in member.description.split(", ") if term and term.lower() not in prompt.lower()]
        if not missing:
            continue
        look = ", ".join(missing)
        found = name.search(prompt)
        if found is None:
            prompt = f"{member.name}, {look}, {prompt}"
        else:
            rest = prompt[found.end() :].lstrip(":, ")
            prompt = ", ".join(part for part in (prompt[: found.end()], look, rest) if part)
    return prompt[: MAX_BEAT_PROMPT_CHARS * 2]
