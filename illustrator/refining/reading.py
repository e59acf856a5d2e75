"""The rules' reading of a writer's message as a change to the story sheet: the action and the operations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from illustrator import rules
from illustrator.lexicon import mood_terms
from illustrator.plan import Action
from illustrator.refining.changes import SCENE, Op, attribute_of
from illustrator.refining.passages import english, is_name, is_narrative, visible_text
from illustrator.refining.sheet import Sheet, Subject, Value, normalise

_SCENE_OF = {"time": "time_of_day", "place": "setting", "weather": "weather", "season": "season", "light": "lighting"}
_PLACES = r"stairs|staircase|tower|cliff|rooftop|roof|shop|station|square|bazaar|island|ruins|swamp|jungle|deck|ship"
_FRAMING = r"close-?up|wide shot|portrait|full body|from above|from below|low angle|bird'?s-eye view|profile view"
_STYLE = (
    r"watercolou?r|oil painting|pencil sketch|ink drawing|charcoal|anime|manga|pixel art|photo(?:graph|realistic)?|"
    r"comic(?: book)?(?: style)?|storybook|woodcut|pastel drawing|3d render|cartoon"
)
_CREATURES = (  # heads of terms that are subjects of their own, not attributes of the one in focus
    r"man|woman|girl|boy|child|knight|king|queen|witch|wizard|dragon|cat|dog|raven|crow|fox|wolf|owl|horse|bird|"
    r"sailor|soldier|robot|mermaid|fisherman|lighthouse|ship|tree|castle|unicorn|bear|deer|rabbit|mouse|lion|tiger"
)
_CREATURE = re.compile(rf"^(?:{_CREATURES})s?$")
# one that comes with its own doing ("a brown dog running beside him"): a subject of its own, not the focus's pose
_COMPANION = re.compile(
    rf"^(?:a|an|one|two|three)\s(?:[\w-]+\s){{0,2}}?(?P<who>{_CREATURES})s?(?:$|\s+(?P<doing>\w+ing)\b)"
)
_UNDO = re.compile(r"^\W*(?:undo(?: that| it| this| the last)?|take (?:that|it) back|revert (?:that|it))\b", re.I)
_LOCK = re.compile(
    r"^\W*(?:please\s+)?(?P<verb>keep|lock|unlock|free)\s+(?P<what>.+?)"
    r"(?:\s+(?:the same|as (?:it|they) (?:is|are)|locked|fixed|unchanged|from now on))?\W*$",
    re.I,
)
_YOU_CAN_CHANGE = re.compile(r"^\W*you (?:can|may) change\s+(?P<what>.+?)\W*$", re.I)
_MEET = re.compile(
    r"^\W*(?i:meet|this is|introducing|here is|here's)\s+(?P<name>[A-Z][\w'-]+)\s*(?:[:,\-–—]|\bis\b|\bwho has\b)\s*(?P<rest>.+)$"  # noqa: E501
)
_BACK = re.compile(
    r"\b(?:go(?:ing)? back to|back to|return to|revert to|switch back to|bring back)\s+(?:the\s+|her\s+|his\s+)?"
    r"(?P<what>[\w' -]+?)(?:\s+(?:again|please))?(?:\s*(?:,|\band\b|\bthen\b|[.!;])|$)(?P<rest>.*)$",
    re.I,
)
# The panel's "Redraw with the sheet" button sends this: the picture redrawn from the sheet as the writer edited it.
REDRAW_WITH_SHEET = "Redraw with the story sheet."
_REDRAW = re.compile(r"^\W*redraw(?: it| the picture)? (?:with|from) the (?:story )?sheet\W*$", re.I)
_DRAW = re.compile(r"^\W*(?:now\s+|then\s+)?(?:draw|paint|sketch|show|put)\b")


@dataclass(frozen=True)
class Reading:
    """The rules' reading of one message: the action, the operations on the sheet, the edit strength."""

    action: Action
    ops: tuple[Op, ...]
    strength: float | None = None
    narrative: bool = False  # read from a story passage or a poem (where an LLM may see more)
    wish: str = ""  # the visual description the rules found in the message


def read_message(text: str, sheet: Sheet, earlier: Sequence[Sheet] = (), *, has_picture: bool = True) -> Reading:
    """Read the writer's latest message against the current sheet (`earlier`: the sheets before it, oldest first)."""
    message = english(rules.without_injections(text))
    lowered = message.lower()
    if not has_picture or not sheet.visible:
        return _read_new(message, sheet, narrative=is_narrative(text))
    if _UNDO.search(message):
        return Reading(Action.EDIT, (Op("undo"),), 0.6) if earlier else Reading(Action.VARIATION, ())
    if _REDRAW.match(message):
        return Reading(Action.VARIATION, ())  # an edit when the writer changed the sheet since (SheetRefiner)
    locking = _read_lock(message, sheet)
    if locking is not None:
        return locking
    if _MEET.match(message):
        return _read_new(message, sheet)
    back = _BACK.search(message)
    if back is not None:
        reverted = _read_back(back, sheet, earlier)
        if reverted is not None:
            return reverted
    named = _named(message, sheet)
    description = rules._description(message)
    removed = rules._REMOVE.search(lowered)
    new_wording = rules._NEW.search(lowered) or (
        not rules._EDIT.search(lowered) and re.match(r"(?:a|an)(?:\s+\S+){3}", lowered)
    )
    if is_narrative(text):
        return _read_new(message, sheet, narrative=True)
    if new_wording or (named is not None and _DRAW.match(lowered)):  # "draw Mira on a rooftop": a new scene
        return _read_new(message, sheet)
    if not description and not removed:
        return Reading(Action.VARIATION, (), wish="")
    return _read_edit(message, sheet, named)


def _read_new(message: str, sheet: Sheet, *, narrative: bool = False) -> Reading:
    """A new picture: a new scene keeping the cast; a character the writer names keeps the look it has."""
    source = visible_text(message) if narrative else message
    meet = _MEET.match(source)
    ops: list[Op] = [Op("new_scene")]
    named = _named(source, sheet)
    if meet:
        name = meet["name"]
        ops.append(Op("add_subject", name, value=name))
        description = rules._description(meet["rest"])
    else:
        description = rules._description(source)
        if named is not None:
            ops.append(Op("focus", named.key))
            description = _without_words(description, named)
        else:
            names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", source) if is_name(w)]
            if names and narrative:
                ops.append(Op("add_subject", names[0], value=names[0]))
                description = _without_words(description, None, names[0])
    segments = _split_in(rules._segments(description))
    if len(ops) == 1:  # no named character: the first thing described is the subject
        things = [s for s in segments if _scene_field(s) is None and not _only_mood(s)]
        first = next((s for s in things if re.match(_ARTICLE, s)), None)
        if first is None:  # "a city that never sleeps": the place is what is drawn
            first = next((s for s in segments if re.match(_ARTICLE, s)), things[0] if things else None)
        if first is None:
            first = segments[0] if segments else "an illustration"
        else:
            segments.remove(first)
        placed = re.fullmatch(
            r"(?P<who>.+?)\s(?P<where>(?:on|near|by|under|beside|at|in)\s(?:a|an|the|her|his)\s.+)", first
        )
        if placed is not None:  # "a cat on a windowsill": the subject, and where it is
            first = placed["who"]
            segments.insert(0, placed["where"])
        head = subject_head(first)
        ops.append(Op("add_subject", head, head, first))
    focus = next(op.subject for op in reversed(ops) if op.op in {"add_subject", "focus"})
    ops += _term_ops(segments, sheet, fresh=True)
    ops.append(Op("focus", focus))
    ops += _mood_ops(message)
    return Reading(Action.NEW, tuple(ops), None, narrative=narrative, wish=description)


def _read_edit(message: str, sheet: Sheet, named: Subject | None) -> Reading:
    lowered = message.lower()
    ops: list[Op] = []
    subject = named
    removed = rules._REMOVE.search(lowered)
    rest = message
    if removed:
        what, _, after = re.split(r"(,| and | but )", removed.group("what") + ",", maxsplit=1)
        what = " ".join(rules._segments(rules._description(what))) or what.strip()
        what = re.sub(rf"^(?:{rules._HOLDS}|wearing)\s+(?:a |an |the )?", "", what)
        gone = sheet.find(what)
        if gone is not None and gone.key in sheet.visible and len(sheet.visible) > 1:
            ops.append(Op("drop_subject", gone.key))  # "remove the dragon": the dragon leaves the picture
            subject = None if subject is gone else subject
        else:
            ops.append(Op("remove", subject.key if subject else None, value=what))
        rest = lowered[: removed.start()] + " " + after
    if subject is not None and subject.key != sheet.focus:
        ops.insert(0, Op("focus", subject.key))
    description = rules._description(rest)
    segments = _split_in(rules._segments(description))
    ops += _term_ops(segments, sheet, fresh=False, focus=subject.key if subject else sheet.focus)
    ops += _mood_ops(message)
    strength = rules._strength(segments, lowered, removed is not None)
    return Reading(Action.EDIT, tuple(ops), strength, wish=description)


def _term_ops(segments: Sequence[str], sheet: Sheet, *, fresh: bool, focus: str | None = None) -> list[Op]:
    """An operation per term: a scene field, another subject's kind, or an attribute of the subject in focus."""
    ops: list[Op] = []
    segments = segments if fresh else _with_companions(segments, sheet)
    for segment in segments:
        if set(segment.split()) <= {"a", "an", "the", "some"}:
            continue  # an article the splitting left behind
        field = _scene_field(segment)
        if field is not None:
            old = None if fresh else sheet.scene.get(field)
            value = rules._combine(old.text, segment, "noun:x") if old and field == "lighting" else segment
            ops.append(Op("set", SCENE, field, value))
            if field == "season" and not fresh:
                ops += _season_fixes(sheet, segment)
            continue
        head = attribute_of(segment)
        other = None if fresh else sheet.find(head)
        companion = None if fresh else _COMPANION.match(segment)
        doing = companion is not None and companion["doing"] is not None
        if companion is not None and doing and sheet.find(companion["who"]) is None:  # "a dog running beside" joins
            ops.append(Op("add_subject", companion["who"], companion["who"], segment))
            ops += [Op("focus", focus)] if focus else []
        elif other is not None and any(attribute_of(v.text) == head for v in other.attributes.values()):
            ops.append(Op("set", other.key, head, segment))
        elif _CREATURE.match(head) and fresh:
            ops.append(Op("add_subject", head, head, segment))
        else:
            target = sheet.subject(focus) if not fresh else None
            category = rules._category(segment)
            attribute = {"pose": "pose", "holding": "holding", "expression": "expression"}.get(category, head)
            old = target.attributes.get(attribute) if target is not None else None
            value = rules._combine(old.text, segment, category) if old is not None else segment
            ops.append(Op("set", None, attribute, value))
    return ops


def _with_companions(segments: Sequence[str], sheet: Sheet) -> list[str]:
    """A newcomer and what it does, as one term: "a brown dog", "running beside" -> "a brown dog running beside"."""
    result: list[str] = []
    for segment in segments:
        previous = _COMPANION.match(result[-1]) if result else None
        if previous and sheet.find(previous["who"]) is None and rules._category(segment) == "pose":
            result[-1] = f"{result[-1]} {segment}"
        else:
            result.append(segment)
    return result


_ARTICLE = r"(?:a|an|the|one|two|three|four|five|several|some|many)\s"


def subject_head(term: str) -> str:
    """The noun a subject is called by: the head before any place ("a mermaid near a waterfall" -> mermaid)."""
    before = re.split(r"\s(?:near|on|in|by|at|under|beside|over|with|from|of)\s", term, maxsplit=1)[0]
    return attribute_of(before)


def _only_mood(segment: str) -> bool:
    """Whether a term is only a mood or an adjective ("dread", "carefree", "golden"), not a thing to draw."""
    words = segment.split()
    return len(words) == 1 and (bool(mood_terms(segment)) or words[0] in rules._ADJECTIVES or words[0].endswith("ing"))


def _split_in(segments: list[str]) -> list[str]:
    """Split "a knight in silver armour" into the subject and what it wears; "in a forest" stays a place."""
    result: list[str] = []
    for segment in segments:
        match = re.fullmatch(r"(?P<left>.+?)\s+(?:dressed )?in\s+(?P<right>(?!her |his |their )\S+\s+.+)", segment)
        placed = re.fullmatch(r"(?P<left>.+?)\s+(?P<right>(?:on|near|by|under|beside|at)\s+.+)", segment)
        if match and _scene_field(match["right"]) is None and _scene_field(segment) is None:
            result += [match["left"], match["right"]]
        elif (
            placed
            and _scene_field(placed["right"]) == "setting"
            and _scene_field(placed["left"]) is None
            and rules._category(placed["left"]) != "pose"  # "sitting on a rock" stays one pose
        ):
            result += [placed["left"], placed["right"]]
        else:
            result.append(segment)
    return result


def _scene_field(segment: str) -> str | None:
    if re.search(rf"\b(?:{_FRAMING})\b", segment):
        return "framing"
    if re.search(rf"\b(?:{_STYLE})\b", segment):
        return "style"
    category = rules._category(segment)
    head = attribute_of(segment)
    if category == "time" and re.fullmatch(rf"{_PLACES}|{rules._PLACES}", head) and not _CREATURE.match(head):
        return "setting"  # "in a night market" is a place, not a time of day
    if category in _SCENE_OF:
        return _SCENE_OF[category]
    if re.search(rf"\b(?:{_PLACES})\b", segment) and not _CREATURE.match(attribute_of(segment)):
        return "setting"
    if re.match(r"(?:on|near|beside|under)\s(?:a|an|the)\s", segment):  # "on a windowsill", "near a waterfall"
        return "setting"
    return None


def _season_fixes(sheet: Sheet, season: str) -> list[Op]:
    """Other scene values that name the old season get the new one ("a summer meadow" -> "a winter meadow")."""
    new = re.search(rf"\b(?:{rules._SEASONS})\b", season)
    ops = []
    holders = [(SCENE, sheet.scene)] + [(s.key, s.attributes) for s in sheet.visible_subjects()]
    for key, attributes in holders:  # "a village square in summer" read as the subject names its season too
        for name, value in attributes.items():
            if name != "season" and new and re.search(rf"\b(?:{rules._SEASONS})\b", value.text):
                ops.append(Op("set", key, name, re.sub(rf"\b(?:{rules._SEASONS})\b", new[0], value.text)))
    return ops


def _mood_ops(message: str) -> list[Op]:
    terms = mood_terms(message)
    return [Op("set", SCENE, "mood", ", ".join(terms))] if terms else []


def _read_lock(message: str, sheet: Sheet) -> Reading | None:
    match = _LOCK.match(message) or _YOU_CAN_CHANGE.match(message)
    if match is None:
        return None
    verb = match.groupdict().get("verb") or "unlock"
    op = "unlock" if verb.lower() in {"unlock", "free"} else "lock"
    what = match["what"].lower()
    named = sheet.find(re.sub(r"'s\b", "", what))  # "lock Kael's tattoo": Kael's, whoever is in focus
    focus = named if named is not None and named.key in sheet.visible else sheet.subject(sheet.focus)
    if named is not None and focus is named:
        what = re.sub(rf"\b{re.escape(named.name.lower())}(?:'s)?\b", " ", what)
        if not what.strip(" ,."):  # "lock Kael": his whole look
            what = ", ".join(named.attributes)
    words = re.split(r",|\band\b", re.sub(r"\b(?:her|his|their|its|the)\b", " ", what))
    subject = None if focus is None or focus.key == sheet.focus else focus.key
    ops: list[Op] = []
    for word in (" ".join(w.split()) for w in words):
        attribute = attribute_of(word) if word else ""
        scene_name = attribute.replace(" ", "_")
        if focus is not None and attribute in focus.attributes:
            ops.append(Op(op, subject, attribute))
        elif scene_name in sheet.scene or f"{scene_name}_of_day" in sheet.scene:
            ops.append(Op(op, SCENE, scene_name if scene_name in sheet.scene else f"{scene_name}_of_day"))
        elif attribute == "face" and focus is not None:
            ops += [Op(op, subject, a) for a in focus.attributes if a in {"face", "eye", "expression"}]
    if not ops:
        return None
    return Reading(Action.VARIATION, tuple(ops))


def _read_back(match: re.Match[str], sheet: Sheet, earlier: Sequence[Sheet]) -> Reading | None:
    """ "go back to the witch" restores her last sheet; "go back to red" restores the value that had "red"."""
    what, rest = match["what"].strip(), match["rest"].strip()
    subject = sheet.find(what)
    if subject is not None and subject.key != sheet.focus:
        index = next((i for i in range(len(earlier) - 1, -1, -1) if earlier[i].focus == subject.key), None)
        ops = [Op("revert", value=str(index))] if index is not None else [Op("new_scene"), Op("focus", subject.key)]
        restored = earlier[index] if index is not None else sheet
        if rest:
            edit = _read_edit(
                re.sub(r"^(?:and|then)\s+", "", rest, flags=re.I), restored, restored.subject(subject.key)
            )
            ops += [o for o in edit.ops if o.op != "focus"]
        return Reading(Action.NEW, tuple(ops))
    words = set(normalise(what).split()) - {"it", "that", "before", "previous", "one"}
    for old in reversed(earlier):
        for holder, attributes in _attribute_sets(old, sheet):
            for name, value in attributes.items():
                if words and words <= set(normalise(value.text).split()):
                    current = _current(sheet, holder, name)
                    if current != value.text:
                        return Reading(Action.EDIT, (Op("set", holder, name, value.text),), 0.55)
    return None


def _attribute_sets(old: Sheet, current: Sheet) -> list[tuple[str | None, dict[str, Value]]]:
    sets: list[tuple[str | None, dict[str, Value]]] = [(SCENE, old.scene)]
    focus = old.subject(current.focus)
    if focus is not None:
        sets.insert(0, (None, focus.attributes))
    return sets


def _current(sheet: Sheet, holder: str | None, name: str) -> str | None:
    if holder == SCENE:
        value = sheet.scene.get(name)
    else:
        subject = sheet.subject(sheet.focus)
        value = subject.attributes.get(name) if subject else None
    return value.text if value else None


def _named(message: str, sheet: Sheet) -> Subject | None:
    """The cast member the message names ("Kael", "the witch"), or None."""
    return sheet.find(message) if sheet.cast else None


def _without_words(description: str, subject: Subject | None, name: str | None = None) -> str:
    names = {subject.key, subject.name.lower()} if subject is not None else {(name or "").lower()}
    words = [w for w in description.split() if w.strip(",.").lower() not in names]
    return " ".join(words).strip(" ,")
