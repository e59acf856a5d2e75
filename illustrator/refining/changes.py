"""Changes to the story sheet: a small validated list of operations, applied with locks kept, and their diff."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from illustrator.errors import PlanError
from illustrator.refining.sheet import SCENE_FIELDS, Sheet, Subject, Value, normalise, subject_key

OPS = ("set", "add", "remove", "add_subject", "drop_subject", "focus", "new_scene", "revert", "undo", "lock", "unlock")
SCENE = "scene"  # the `subject` of an operation on the scene
MAX_OPS = 16
MAX_VALUE_CHARS = 80
_MARKUP = re.compile(r"[{}<>|\[\]\\]")


@dataclass(frozen=True)
class Op:
    """One operation: what it does, on which subject ("scene" for the scene) and attribute, with which value."""

    op: str
    subject: str | None = None  # a subject's key or name; None means the subject in focus
    attribute: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, str]:
        """The operation as JSON-able values, without the empty fields."""
        fields = {"op": self.op, "subject": self.subject, "attribute": self.attribute, "value": self.value}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class ChangeResult:
    """A sheet after a change: the new sheet, the diff lines, and a line per refused operation."""

    sheet: Sheet
    diff: tuple[str, ...]
    refused: tuple[str, ...]
    asked: frozenset[tuple[str, str]]  # (subject key, attribute) the change meant to touch, for the drift check


def parse_ops(raw: Any) -> tuple[Op, ...]:
    """Validate a change proposed as JSON values (a list of {op, subject, attribute, value}); PlanError otherwise."""
    if isinstance(raw, dict):
        raw = raw.get("changes", raw.get("ops"))
    if not isinstance(raw, list) or not raw:
        raise PlanError("The refiner's change is not a list of operations.")
    if len(raw) > MAX_OPS:
        raise PlanError(f"The refiner's change has {len(raw)} operations; at most {MAX_OPS} are taken.")
    ops = []
    for item in raw:
        if not isinstance(item, dict) or item.get("op") not in OPS:
            raise PlanError(f"The refiner proposed an unknown operation: {str(item)[:60]!r}.")
        fields = {}
        for name in ("subject", "attribute", "value"):
            text = item.get(name)
            if text is not None and not isinstance(text, (str, int)):
                raise PlanError(f"The operation's {name} is not text.")
            text = None if text is None else " ".join(str(text).split())
            if text is not None and (len(text) > MAX_VALUE_CHARS or _MARKUP.search(text)):
                raise PlanError(f"The operation's {name} is too long or holds markup.")
            fields[name] = text or None
        op = Op(str(item["op"]), **fields)
        if op.op in {"set", "lock", "unlock"} and not op.attribute:
            raise PlanError(f"A {op.op} operation needs an attribute.")
        if op.op in {"set", "add", "add_subject"} and not op.value:
            raise PlanError(f"An {op.op} operation needs a value.")
        ops.append(op)
    return tuple(ops)


def lock_op(subject: str, attribute: str, locked: bool) -> Op:
    """The operation a click on the sheet makes: lock (or unlock) one attribute of a subject or of the scene."""
    return Op("lock" if locked else "unlock", subject, attribute)


def attribute_of(term: str) -> str:
    """The attribute a term sets when none is named: its head noun, singular ("three ravens" -> "raven")."""
    words = normalise(term).split()
    word = words[-1] if words else "detail"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def apply_changes(sheet: Sheet, ops: Sequence[Op], earlier: Sequence[Sheet] = ()) -> ChangeResult:
    """Apply `ops` in order; `earlier` are the sheets of the pictures before this one, oldest first (for undo)."""
    new, refused, asked = sheet, [], set()
    for op in ops:
        new, refusal, touched = _apply(new, op, earlier, sheet)
        if refusal:
            refused.append(refusal)
        asked |= touched
    new = replace(new, negative=_negative_without_positive(new))
    return ChangeResult(new, tuple(diff_lines(sheet, new)), tuple(refused), frozenset(asked))


def _apply(
    sheet: Sheet, op: Op, earlier: Sequence[Sheet], before: Sheet
) -> tuple[Sheet, str | None, set[tuple[str, str]]]:
    if op.op in {"undo", "revert"}:
        return _revert(sheet, op, earlier), None, set()
    if op.op == "new_scene":
        style = {k: v for k, v in sheet.scene.items() if k == "style" or v.locked}
        return replace(sheet, scene=style, visible=(), focus=None, negative=()), None, set()
    if op.op == "add_subject":
        return _add_subject(sheet, op), None, set()
    target = _target(sheet, op.subject)
    if target is None:
        return sheet, f"There is no {op.subject or 'subject'} in the picture to change.", set()
    if op.op == "focus":
        return _show(sheet, target.key), None, set()
    if op.op == "drop_subject":
        visible = tuple(k for k in sheet.visible if k != target.key)
        focus = sheet.focus if sheet.focus != target.key else (visible[0] if visible else None)
        negative = (*sheet.negative, target.kind or target.name)  # the picture had it: keep it from coming back
        return replace(sheet, visible=visible, focus=focus, negative=negative), None, {(target.key, "*")}
    attributes = sheet.scene if target.key == SCENE else target.attributes
    attribute = op.attribute or (attribute_of(op.value) if op.value else None)
    if op.op == "remove" and attribute not in attributes and op.value:
        attribute = _attribute_holding(attributes, op.value) or attribute
    if attribute is None:
        return sheet, "That change names no attribute.", set()
    old = attributes.get(attribute)
    touched = {(target.key, attribute)}
    if op.op in {"lock", "unlock"}:
        if old is None:
            return sheet, f"{_label(target, attribute)} is not set, so there is nothing to {op.op}.", touched
        return _put(sheet, target, attribute, replace(old, locked=op.op == "lock")), None, touched
    if old is not None and old.locked:
        if op.op == "remove" or normalise(old.text) != normalise(op.value or ""):
            return sheet, f"{_label(target, attribute)} is locked ({old.text}); unlock it to change it.", touched
        return sheet, None, touched
    if op.op == "remove":
        if old is None:
            return sheet, None, touched
        sheet = _put(sheet, target, attribute, None)
        return replace(sheet, negative=(*sheet.negative, op.value or old.text)), None, touched
    return _put(sheet, target, attribute, Value(op.value or "")), None, touched


def _target(sheet: Sheet, name: str | None) -> Subject | None:
    if name == SCENE:
        return Subject(SCENE, SCENE, attributes=dict(sheet.scene))
    if name is None:
        return sheet.subject(sheet.focus)
    return sheet.subject(name) or sheet.subject(subject_key(name)) or sheet.find(name)


def _put(sheet: Sheet, target: Subject, attribute: str, value: Value | None) -> Sheet:
    if target.key == SCENE:
        if attribute not in SCENE_FIELDS:
            return sheet
        scene = dict(sheet.scene)
        if value is None:
            scene.pop(attribute, None)
        else:
            scene[attribute] = value
        return replace(sheet, scene=scene)
    current = sheet.subject(target.key) or target
    return sheet.with_subject(current.with_attribute(attribute, value))


def _add_subject(sheet: Sheet, op: Op) -> Sheet:
    name = op.subject or op.value or "subject"
    key = subject_key(name)
    existing = sheet.subject(key)
    kind = op.value or name
    if existing is None:
        kind_attribute = op.attribute or attribute_of(kind)
        named = normalise(kind) == normalise(name) and name[:1].isupper()  # "Kael" is who he is, not an attribute
        sheet = sheet.with_subject(Subject(key, name, kind, {} if named else {kind_attribute: Value(kind)}))
    return _show(sheet, key)


def _show(sheet: Sheet, key: str) -> Sheet:
    visible = sheet.visible if key in sheet.visible else (*sheet.visible, key)
    return replace(sheet, visible=visible, focus=key)


def _revert(sheet: Sheet, op: Op, earlier: Sequence[Sheet]) -> Sheet:
    """The earlier sheet asked for (undo: the one before), with today's locked values kept as they are."""
    if not earlier:
        return sheet
    index = -1
    if op.op == "revert" and op.value is not None:
        try:
            index = int(op.value)
        except ValueError:
            index = -1
    restored = earlier[max(-len(earlier), min(index, len(earlier) - 1))]
    for subject in sheet.cast:
        old = restored.subject(subject.key)
        kept = old or replace(subject, attributes={})
        for name, value in subject.attributes.items():
            if value.locked:
                kept = kept.with_attribute(name, value)
        if old is not None or kept.attributes:
            restored = restored.with_subject(kept)
    scene = dict(restored.scene) | {k: v for k, v in sheet.scene.items() if v.locked}
    return replace(restored, scene=scene)


def _attribute_holding(attributes: dict[str, Value], text: str) -> str | None:
    words = set(normalise(text).split())
    return next((k for k, v in attributes.items() if words & set(normalise(v.text).split()) - {"a", "of"}), None)


def _negative_without_positive(sheet: Sheet) -> tuple[str, ...]:
    """The negative terms, without any that names what the sheet asks for (the negative never contradicts)."""
    positive = {attribute_of(v.text) for s in sheet.visible_subjects() for v in s.attributes.values()}
    positive |= {attribute_of(v.text) for v in sheet.scene.values()}
    seen: list[str] = []
    for term in sheet.negative:
        if attribute_of(term) not in positive and term not in seen:
            seen.append(term)
    return tuple(seen)


def _label(subject: Subject, attribute: str) -> str:
    if subject.key == SCENE:
        return f"The {attribute.replace('_', ' ')}"
    return f"{subject.name[:1].upper()}{subject.name[1:]}'s {attribute}"


def diff_lines(old: Sheet, new: Sheet) -> list[str]:
    """What changed, one line each: `hair: black → red`, `+ lantern`, `- staff`, `season: summer → winter`."""
    lines: list[str] = []
    for key in new.visible:
        if key not in old.visible:
            subject = new.subject(key)
            lines.append(f"+ {subject.name if subject else key}")
    for key in old.visible:
        if key not in new.visible:
            subject = old.subject(key)
            lines.append(f"- {subject.name if subject else key}")
    many = len(new.visible) > 1
    for subject in new.visible_subjects():
        before = old.subject(subject.key)
        prefix = f"{subject.name} " if many else ""
        old_attributes = before.attributes if before is not None and subject.key in old.visible else {}
        lines += _attribute_lines(
            old_attributes, subject.attributes, prefix, new_subject=subject.key not in old.visible
        )
    lines += _attribute_lines(old.scene, new.scene, "", new_subject=False, scene=True)
    if new.focus != old.focus and new.focus in old.visible and new.focus in new.visible:
        subject = new.subject(new.focus)
        lines.append(f"focus: {subject.name if subject else new.focus}")
    return lines


def _attribute_lines(
    old: dict[str, Value], new: dict[str, Value], prefix: str, *, new_subject: bool, scene: bool = False
) -> list[str]:
    lines = []
    for name, value in new.items():
        before = old.get(name)
        label = name.replace("_", " ")
        if before is None:
            if not new_subject:
                lines.append(f"{label}: {value.text}" if scene else f"+ {prefix}{value.text}")
        elif normalise(before.text) != normalise(value.text):
            label = "" if prefix and attribute_of(prefix) == name else label  # "raven: three → one"
            lines.append(f"{prefix}{label}".strip() + f": {_short(before.text, name)} → {_short(value.text, name)}")
        if before is not None and before.locked != value.locked:
            lines.append(f"{'locked' if value.locked else 'unlocked'}: {prefix}{label}")
    for name, value in old.items():
        if name not in new and not new_subject:
            lines.append(f"- {prefix}{value.text}")
    return lines


def _short(text: str, attribute: str) -> str:
    """A value without the attribute's own word: "long red hair" for hair -> "long red"."""
    words = text.split()
    if len(words) > 1 and attribute_of(words[-1]) == attribute:
        return " ".join(words[:-1])
    return text
