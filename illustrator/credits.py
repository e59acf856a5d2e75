"""Credit where it is due: the artists and studios a wish or a prompt names, read with patterns and a curated list."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ARTISTS_FILE = Path(__file__).resolve().parent.parent / "assets" / "credits" / "artists.json"
GENERAL_OUTPUT = "General model output"  # what a picture that names no artist says instead of a credit
STYLE_AFTER = "Style after"

# A cue before a name: "in the style of", "like", "by", "à la", ... (the short forms of names count only after one)
_CUE = (
    r"(?:in\s+the\s+(?:art\s+|painting\s+|drawing\s+)?(?:style|manner|spirit|tradition)\s+of|style\s+of|"
    r"(?:painted|drawn|illustrated|inked|photographed|animated|made|done|rendered)\s+(?:by|after|like)|"
    r"(?:art|artwork|illustration|painting)\s+by|(?:inspired|influenced)\s+by|homage\s+to|reminiscent\s+of|"
    r"looks?\s+like|like|by|after|à\s+la|a\s+la)"
)
# ... or a word after it: "Ghibli-style", "Moebius style", "Rembrandt lighting", "Burton-esque"
_AFTER = r"(?:[\s-]+(?:style|styled|inspired|lighting|like)|-?esque)(?!\w)"
_JOIN = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s+and\s+|\s*&\s*|\s+or\s+)(?:the\s+)?")
# A name after a strong cue that is not on the list: two or three capitalised words ("in the style of Jane Hale")
_UNLISTED = re.compile(
    r"(?:in\s+the\s+(?:art\s+)?style\s+of|(?:painted|drawn|illustrated)\s+by|(?:art|artwork)\s+by)\s+"
    r"((?:[A-Z][\w'’.-]+)(?:\s+(?:(?:de|van|von|da|del|di|du|la|le)\s+)?[A-Z][\w'’.-]+){1,2})"
)
# Capitalised words that make a movement, a period or a medium, not a person ("in the style of Art Nouveau")
_NOT_A_PERSON = frozenset(
    "art nouveau deco renaissance baroque gothic rococo impressionism impressionist expressionism expressionist "
    "cubism cubist surrealism surrealist realism romanticism romantic victorian edwardian medieval ancient classical "
    "pop old dutch flemish italian french japanese chinese korean russian german english american persian indian "
    "golden age modern modernism minimalism bauhaus ukiyo-e film noir anime manga studio school "
    "the a an my our his her their this that national geographic".split()
)


@dataclass(frozen=True)
class _Names:
    """The compiled list: full names anywhere, short forms after a cue, each pointing at the name to credit."""

    canonical: dict[str, str]  # every written form, lowercased -> the name to credit
    anywhere: re.Pattern[str]
    after_cue: re.Pattern[str]
    before_word: re.Pattern[str]
    following: re.Pattern[str]


def _forms(entries: Iterable[str]) -> tuple[dict[str, str], list[str], list[str]]:
    canonical: dict[str, str] = {}
    full: list[str] = []
    short: list[str] = []
    for entry in entries:
        name, *aliases = (part.strip() for part in entry.split("|"))
        for form in (name, *aliases):
            canonical.setdefault(form.lower(), name)
            (full if len(form.split()) >= 2 else short).append(form)
    return canonical, full, short


def _alternation(forms: Sequence[str]) -> str:
    # longest first, so "Pieter Bruegel the Elder" wins over "Pieter Bruegel"
    return "|".join(re.escape(form).replace(r"\ ", r"\s+") for form in sorted(set(forms), key=len, reverse=True))


@functools.lru_cache(maxsize=4)
def _names(path: Path = ARTISTS_FILE) -> _Names:
    """The artists list, read and compiled once."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    entries = [entry for key, group in raw.items() if key != "format" for entry in group]
    canonical, full, short = _forms(entries)
    every = _alternation(full + short)
    return _Names(
        canonical=canonical,
        anywhere=re.compile(rf"(?<!\w)({_alternation(full)})(?!\w)", re.IGNORECASE),
        after_cue=re.compile(rf"(?<!\w){_CUE}\s+(?:the\s+)?({every})(?!\w)", re.IGNORECASE),
        before_word=re.compile(rf"(?<!\w)({every}){_AFTER}", re.IGNORECASE),
        following=re.compile(rf"({every})(?!\w)", re.IGNORECASE),
    )


def _key(form: str) -> str:
    return " ".join(form.split()).lower()


def artists_in(text: str, *, names_file: Path = ARTISTS_FILE) -> list[str]:
    """The artists and studios `text` names as a style, in the order they first appear, each once."""
    if not text or not text.strip():
        return []
    names = _names(names_file)
    found: list[tuple[int, str]] = []
    for match in names.anywhere.finditer(text):
        found.append((match.start(1), names.canonical[_key(match.group(1))]))
    for match in names.before_word.finditer(text):
        found.append((match.start(1), names.canonical[_key(match.group(1))]))
    for match in names.after_cue.finditer(text):
        found.append((match.start(1), names.canonical[_key(match.group(1))]))
        end = match.end()
        while (join := _JOIN.match(text, end)) and (more := names.following.match(text, join.end())):
            found.append((more.start(1), names.canonical[_key(more.group(1))]))
            end = more.end()
    for match in _UNLISTED.finditer(text):
        candidate = match.group(1).rstrip(".'’")
        words = {word.lower() for word in re.split(r"[\s-]+", candidate)}
        if words & _NOT_A_PERSON or any(start == match.start(1) for start, _ in found):
            continue
        found.append((match.start(1), names.canonical.get(_key(candidate), candidate)))
    ordered: list[str] = []
    for _, name in sorted(found, key=lambda item: item[0]):
        if name not in ordered:
            ordered.append(name)
    return ordered


def merge_artists(*groups: Iterable[str]) -> list[str]:
    """The names of several lists together, each once, in the order first seen."""
    merged: list[str] = []
    for group in groups:
        for name in group:
            if name not in merged:
                merged.append(name)
    return merged


def credit_line(artists: Sequence[str] | None) -> str:
    """The credit a picture carries: "Style after Claude Monet", or "General model output" when it names no one."""
    if not artists:
        return GENERAL_OUTPUT
    if len(artists) == 1:
        return f"{STYLE_AFTER} {artists[0]}"
    return f"{STYLE_AFTER} {', '.join(artists[:-1])} and {artists[-1]}"
