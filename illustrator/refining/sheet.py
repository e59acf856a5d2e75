"""The story sheet: the cast (subjects and their attributes, each maybe locked) and the scene of one picture."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from illustrator.errors import InvalidInput

SHEET_VERSION = 1
SCENE_FIELDS = ("setting", "time_of_day", "season", "weather", "lighting", "framing", "mood", "style")


@dataclass(frozen=True)
class Value:
    """One attribute's value (a short visual term such as "long red hair"), maybe locked by the writer."""

    text: str
    locked: bool = False


@dataclass(frozen=True)
class Subject:
    """A character or main subject: its key, the name the writer uses, and its attributes in the order set.

    The attribute named after the subject's own noun (`kind`) is what the subject is ("old witch", "three ravens").
    """

    key: str
    name: str
    kind: str = ""
    attributes: dict[str, Value] = field(default_factory=dict)

    def with_attribute(self, name: str, value: Value | None) -> Subject:
        """A copy with `name` set to `value` (removed when None), keeping the order of the others."""
        attributes = dict(self.attributes)
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
        return replace(self, attributes=attributes)


@dataclass(frozen=True)
class Sheet:
    """Who and what one picture shows: the whole cast of the session, the scene, who is visible and in focus."""

    cast: tuple[Subject, ...] = ()
    scene: dict[str, Value] = field(default_factory=dict)
    visible: tuple[str, ...] = ()  # keys of the subjects in the picture, in the order they were added
    focus: str | None = None  # the subject the writer is talking about ("her", "it")
    negative: tuple[str, ...] = ()  # what was removed and must not come back
    version: int = SHEET_VERSION

    def subject(self, key: str | None) -> Subject | None:
        """The subject with this key, or None."""
        return next((s for s in self.cast if s.key == key), None)

    def find(self, words: str) -> Subject | None:
        """The subject the words name: its key, name or kind ("Kael", "the witch", "dragon"), newest first."""
        text = f" {normalise(words)} "
        for subject in reversed(self.cast):
            names = {subject.key, normalise(subject.name), *_heads(subject.kind)}
            if any(name and f" {name} " in text for name in names):
                return subject
        return None

    def with_subject(self, subject: Subject) -> Sheet:
        """A copy with `subject` replacing the one with its key, or added at the end of the cast."""
        if self.subject(subject.key) is None:
            return replace(self, cast=(*self.cast, subject))
        return replace(self, cast=tuple(subject if s.key == subject.key else s for s in self.cast))

    def visible_subjects(self) -> list[Subject]:
        """The subjects in the picture, the focus first."""
        subjects = [s for s in self.cast if s.key in self.visible]
        return sorted(subjects, key=lambda s: s.key != self.focus)

    def to_dict(self) -> dict[str, Any]:
        """The sheet as plain JSON-able values."""
        return {
            "version": self.version,
            "cast": [
                {
                    "key": s.key,
                    "name": s.name,
                    "kind": s.kind,
                    "attributes": {k: _value_dict(v) for k, v in s.attributes.items()},
                }
                for s in self.cast
            ],
            "scene": {k: _value_dict(v) for k, v in self.scene.items()},
            "visible": list(self.visible),
            "focus": self.focus,
            "negative": list(self.negative),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sheet:
        """A sheet from `to_dict`'s values; InvalidInput when they do not describe one."""
        try:
            version = int(data.get("version", SHEET_VERSION))
            if version > SHEET_VERSION:
                raise InvalidInput(f"This story sheet was written by a newer Illustrator (version {version}).")
            cast = tuple(
                Subject(
                    key=str(s["key"]),
                    name=str(s.get("name", s["key"])),
                    kind=str(s.get("kind", "")),
                    attributes={str(k): _value(v) for k, v in dict(s.get("attributes", {})).items()},
                )
                for s in data.get("cast", [])
            )
            keys = {s.key for s in cast}
            focus = data.get("focus")
            return cls(
                cast=cast,
                scene={str(k): _value(v) for k, v in dict(data.get("scene", {})).items() if k in SCENE_FIELDS},
                visible=tuple(str(k) for k in data.get("visible", []) if k in keys),
                focus=str(focus) if focus in keys else None,
                negative=tuple(str(t) for t in data.get("negative", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidInput(f"The story sheet is malformed: {e!r}") from e


def normalise(text: str) -> str:
    """Lowercase words without articles or punctuation: "The Witch!" -> "witch"."""
    words = re.findall(r"[^\W_]+(?:['-][^\W_]+)*", text.lower())
    return " ".join(w for w in words if w not in {"a", "an", "the"})


def subject_key(name: str) -> str:
    """A stable key for a subject name: "the old Witch" -> "old-witch"."""
    return normalise(name).replace(" ", "-") or "subject"


def _heads(kind: str) -> set[str]:
    """The words that name a subject by its kind: the last word, singular and plural ("three ravens" -> raven)."""
    words = normalise(kind).split()
    if not words:
        return set()
    last = words[-1]
    return {last, last.removesuffix("s"), last + "s"}


def _value_dict(value: Value) -> dict[str, Any]:
    return {"text": value.text, "locked": value.locked}


def _value(raw: Any) -> Value:
    if isinstance(raw, str):
        return Value(raw)
    return Value(str(raw["text"]), bool(raw.get("locked", False)))


def summary_lines(data: dict[str, Any] | None) -> list[str]:
    """A stored sheet in a few plain lines for captions and exports: each subject in the picture, then the scene."""
    if not data:
        return []
    try:
        sheet = Sheet.from_dict(data)
    except InvalidInput:
        return []
    lines = []
    for subject in sheet.visible_subjects():
        shown = [v for v in subject.attributes.values() if normalise(v.text) != normalise(subject.name) or v.locked]
        values = "; ".join(v.text + (" (locked)" if v.locked else "") for v in shown)  # "mermaid: a mermaid" is once
        lines.append(f"{subject.name}: {values}" if values else subject.name)
    scene = [f"{k.replace('_', ' ')}: {v.text}" + (" (locked)" if v.locked else "") for k, v in sheet.scene.items()]
    if scene:
        lines.append("Scene: " + "; ".join(scene))
    return lines
