"""Story mode's beats: a passage (poem, chapter) split into visual moments, each with its span and a proposed prompt."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from illustrator.errors import InvalidInput, PlanError

logger = logging.getLogger(__name__)

MAX_PASSAGE_CHARS = 20_000
MAX_BEATS = 40
MAX_BEAT_SENTENCES = 5
MAX_BEAT_CHARS = 700
MAX_BEAT_PROMPT_CHARS = 300

# Text in, text out: the small interface through which an LLM may propose beats (tests pass a fake).
Complete = Callable[[str], str]


@dataclass(frozen=True)
class CastMember:
    """A character the beats may show, and how they look; the story sheet can fill these in."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class Beat:
    """One visual moment of the passage: its span `passage[start:end]`, who/where/when, and the prompt to draw."""

    start: int
    end: int
    text: str
    prompt: str
    who: tuple[str, ...] = ()
    where: str = ""
    when: str = ""
    continue_previous: bool = False  # draw as an edit of the previous beat's picture instead of a new one
    picture_id: int | None = None  # the picture chosen for this beat (the manuscript shows it)
    status: str = "new"  # new | drawn | failed
    drawn: tuple[int, ...] = ()  # every picture drawn for this beat, oldest first (the last: the beat ended on it)

    def to_dict(self) -> dict[str, Any]:
        """The beat as JSON-ready values."""
        data = asdict(self)
        data["who"] = list(self.who)
        data["drawn"] = list(self.drawn)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Beat:
        """A beat from `to_dict`'s values."""
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        known["who"] = tuple(known.get("who") or ())
        picture = known.get("picture_id")
        known["drawn"] = tuple(known.get("drawn") or ((picture,) if picture is not None else ()))
        return cls(**known)


@dataclass(frozen=True)
class BeatProposal:
    """The beats of a passage and what made them ("rules" or "llm")."""

    beats: list[Beat]
    source: str
    notes: list[str] = field(default_factory=list)


def beats_to_json(beats: Sequence[Beat]) -> str:
    """The beats as the JSON text a Story record stores."""
    return json.dumps([beat.to_dict() for beat in beats], ensure_ascii=False)


def beats_from_json(text: str) -> list[Beat]:
    """The beats of a stored Story record."""
    return [Beat.from_dict(item) for item in json.loads(text or "[]")]


# --- reading the passage ----------------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"\S.*?(?:[.!?…]+[\"'”’)\]]*(?=\s)|\n(?=\s*[A-Z\"“])|\Z)", re.S)
_HEADING = re.compile(r"^\s*(?:chapter|part|book|canto|act|scene)\b[\w .:-]{0,40}$|^\s*[IVXLC\d]+\.?\s*$", re.I)
_QUOTED = re.compile(r"[\"“][^\"”]*[\"”]|(?<!\w)['‘][^'’\n]{2,}[’'](?!\w)")
_VERB = r"(?:said|asked|replied|whispered|shouted|called|cried|answered|muttered|murmured|added)"
_WHO = r"(?:she|he|they|i|we|the\s+[a-z]+|[A-Z][a-z]+)"
# Speech tags next to the quoted words they tag: `"...," said Marco` / `Elena replied, "..."`
_SPEECH_TAG = re.compile(
    rf"(?<=\x00)\s*,?\s*(?:{_WHO}\s+{_VERB}|{_VERB}\s+{_WHO})\b(?:\s+(?:again|softly|quietly|loudly))?[,.]?"
    rf"|\b(?:{_WHO}\s+{_VERB}|{_VERB}\s+{_WHO})\s*[,:]?\s*(?=\x00)"
)
_TIME = re.compile(
    r"\b(?:that (?:night|evening|morning|afternoon)|the next (?:morning|day|evening|night|week)|next (?:morning|day)|"
    r"(?:hours|days|weeks|months|years|moments|minutes) later|later that|later(?=,)|meanwhile|the following|"
    r"at (?:dawn|dusk|noon|midnight|sunrise|sunset|night|daybreak|nightfall)|by (?:morning|nightfall|evening|noon)|"
    r"when (?:the )?(?:night|morning|dawn|evening) came|years passed|in the morning|that winter|that summer|"
    r"when (?:she|he|they) woke)\b",
    re.I,
)
_PLACE = re.compile(
    r"\b(?:arrived (?:at|in)|entered|went (?:in|into|out|down|up|to|back)|came to|reached|walked (?:into|to|out)|"
    r"stepped (?:into|out|onto|inside|outside)|ran (?:to|into|out)|climbed|crossed|returned to|drove (?:to|into)|"
    r"sailed (?:to|into)|rode (?:to|into)|found (?:herself|himself|themselves) in|back (?:at|in) the)\b"
    r"|^(?:in|at|inside|outside|on|under|beyond|across) the\b",
    re.I,
)
_PLACE_PHRASE = re.compile(
    r"\b(?:in|at|on|inside|outside|into|onto|under|across|through|up|down|beside|near|by|to) "
    r"(?:the|a|an|her|his|their) (?:[a-z]+ ){0,2}?(?:room|kitchen|hall|tower|stairs|street|market|harbour|harbor|"
    r"sea|shore|beach|forest|woods|garden|field|hill|mountain|river|lake|village|town|city|castle|church|house|"
    r"cottage|cave|bridge|road|station|train|ship|boat|deck|window|door|library|tavern|inn|square|roof|attic|"
    r"cellar|bedroom|courtyard|meadow|valley|desert|island|well|gate|alley|shop|school|office|park|bar|car)\b",
    re.I,
)
_LIGHT = re.compile(
    r"\b(?:dawn|dusk|sunrise|sunset|twilight|noon|midnight|night|moonlight|moon|starlight|stars|candle(?:light)?|"
    r"lantern|lamplight|firelight|fire|storm|rain|snow|fog|mist|morning|evening|afternoon|winter|summer|autumn|spring"
    r"|golden light|shadows?)\b",
    re.I,
)
_NAME = re.compile(r"(?<![\w'’])[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})?\b")
_NOT_NAMES = frozenset(
    "The This That These Those There Then When Where While What Who Why How But And She Her Hers He His Him They "
    "Them Their It Its You Your We Our Not Now Yes Just Still Once Even After Before Later Meanwhile Chapter Part "
    "Book Canto One Two Three Four Five Six Seven Eight Nine Ten Next Every Each All Some Sir Madam Mister Miss Lady "
    "Lord God Oh Ah Well Come Look Perhaps Maybe Outside Inside Above Below Under Over Across Through Behind Beside "
    "Long Far Night Morning Evening Dawn Dusk Winter Summer Autumn Spring Monday Sunday Saturday Friday Here "
    "Tonight Today Tomorrow Yesterday Did Does Don Can Could Would Should Will Let Please Thank Good Dear".split()
)
_VERSE_LINE_CHARS = 60


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    text: str


def _check_passage(passage: str) -> str:
    if not isinstance(passage, str) or not passage.strip():
        raise InvalidInput("Paste a passage first: a poem, a chapter or a scene.")
    if len(passage) > MAX_PASSAGE_CHARS:
        raise InvalidInput(f"A passage can have at most {MAX_PASSAGE_CHARS:,} characters; split it into parts.")
    return passage


def _blocks(passage: str) -> list[_Unit]:
    units, position = [], 0
    for piece in [*_PARAGRAPH_BREAK.finditer(passage), None]:
        end = piece.start() if piece else len(passage)
        text = passage[position:end]
        if text.strip():
            lead = len(text) - len(text.lstrip())
            units.append(_Unit(position + lead, position + len(text.rstrip()), text.strip()))
        position = piece.end() if piece else end
    return units


def is_verse(passage: str) -> bool:
    """True when the passage reads as a poem: short lines, most of them not ending a sentence."""
    lines = [line.strip() for line in passage.splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    short = sum(len(line) <= _VERSE_LINE_CHARS for line in lines)
    return short / len(lines) >= 0.8 and sum(len(line) for line in lines) / len(lines) < 50


def _sentences(block: _Unit) -> list[_Unit]:
    found = []
    for match in _SENTENCE.finditer(block.text):
        text = match.group(0).rstrip()
        if text:
            found.append(_Unit(block.start + match.start(), block.start + match.start() + len(text), text))
    return found


def proper_names(passage: str) -> frozenset[str]:
    """Capitalised words the passage uses inside a sentence at least once: those are names, not sentence starts."""
    found = set()
    for match in _NAME.finditer(passage):
        before = passage[: match.start()].rstrip(" \t\"“”'‘’—-")
        if before and before[-1] not in ".!?:\n" and match.group(0).split()[0] not in _NOT_NAMES:
            found.add(match.group(0).split()[0])
    return frozenset(found)


def names_in(text: str, cast: Sequence[CastMember] = (), known: frozenset[str] | None = None) -> list[str]:
    """The characters a text names: cast members first, then the passage's proper names (`known`)."""
    known = proper_names(text) if known is None else known
    found = [member.name for member in cast if re.search(rf"(?<!\w){re.escape(member.name)}(?!\w)", text, re.I)]
    for match in _NAME.finditer(_QUOTED.sub(" ", text)):
        name = match.group(0).split()[0]
        if name not in known or name in _NOT_NAMES:
            continue
        if not any(name.lower() in other.lower() or other.lower() in name.lower() for other in found):
            found.append(name)
    return found


def _is_dialogue(text: str) -> bool:
    return text.lstrip()[:1] in "\"“‘'" or text.lstrip().startswith("—")


def _starts_new_beat(
    sentence: str, beat: list[_Unit], seen: set[str], cast: Sequence[CastMember], known: frozenset[str]
) -> bool:
    """A visible change of time, place or character starts a new beat; talk and a full beat's size do not."""
    if not beat:
        return False
    if _is_dialogue(sentence):
        return False
    current = " ".join(unit.text for unit in beat)
    told = [unit for unit in beat if not _is_dialogue(unit.text) and not _HEADING.match(unit.text)]
    if len(told) >= MAX_BEAT_SENTENCES or len(current) + len(sentence) > MAX_BEAT_CHARS:
        return True
    if all(_HEADING.match(unit.text) for unit in beat):
        return False
    head = sentence[:80]
    if _TIME.search(head) or _PLACE.search(head):
        return True
    # a change of character: someone new in focus while no one already in the beat is named
    named = names_in(sentence, cast, known)
    return bool(seen) and any(name not in seen for name in named) and not any(name in seen for name in named)


def _group_prose(passage: str, cast: Sequence[CastMember]) -> list[list[_Unit]]:
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    seen: set[str] = set()
    known = proper_names(passage)
    for block in _blocks(passage):
        for sentence in _sentences(block):
            if _starts_new_beat(sentence.text, current, seen, cast, known):
                groups.append(current)
                current, seen = [], set()
            current.append(sentence)
            seen.update(names_in(sentence.text, cast, known))
    if current:
        groups.append(current)
    return groups


def _limit(groups: list[list[_Unit]]) -> list[list[_Unit]]:
    """At most MAX_BEATS beats: the smallest neighbours are merged first."""
    while len(groups) > MAX_BEATS:
        sizes = [sum(len(u.text) for u in a + b) for a, b in zip(groups, groups[1:], strict=False)]
        i = sizes.index(min(sizes))
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
    return groups


def split_into_beats(passage: str, cast: Sequence[CastMember] = ()) -> list[Beat]:
    """The passage as beats by the rules: stanzas of a poem; sentences of prose grouped by visible change."""
    passage = _check_passage(passage)
    if is_verse(passage):
        groups = [[block] for block in _blocks(passage)]
    else:
        groups = _group_prose(passage, cast)
    beats = []
    for group in _limit(groups):
        start, end = group[0].start, group[-1].end
        beats.append(describe_beat(passage, start, end, cast))
    return beats


# --- what a beat shows ------------------------------------------------------------------------------------------


def visible_text(text: str) -> str:
    """The text without what cannot be seen: headings, quoted speech, speech tags."""
    lines = [line for line in text.splitlines() if not _HEADING.match(line)]
    kept = _SPEECH_TAG.sub(" ", _QUOTED.sub("\x00", " ".join(lines))).replace("\x00", " ")
    kept = re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s+", " ", kept))
    return re.sub(r"^[\s,.;:—-]+|(?<=[.!?])[\s,.;:—-]+(?=[.!?,])", "", kept).strip()


def describe_beat(passage: str, start: int, end: int, cast: Sequence[CastMember] = (), prompt: str = "") -> Beat:
    """A beat for `passage[start:end]`: who, where and when it shows, and a prompt (the one given, or proposed)."""
    if not 0 <= start < end <= len(passage):
        raise InvalidInput(f"A beat must lie inside the passage (0-{len(passage)}), not {start}-{end}.")
    text = passage[start:end]
    seen = visible_text(text)
    who = tuple(names_in(text, cast, proper_names(passage)))
    where = next(iter(m.group(0) for m in _PLACE_PHRASE.finditer(seen)), "")
    when = ", ".join(dict.fromkeys(m.group(0).lower() for m in _LIGHT.finditer(seen)))
    return Beat(start, end, text, prompt.strip() or beat_prompt(seen or text, who, where, when, cast), who, where, when)


def beat_prompt(seen: str, who: Sequence[str], where: str, when: str, cast: Sequence[CastMember] = ()) -> str:
    """A drawing prompt for a beat: the visible action first, the cast's looks, the place and the light."""
    looks = {member.name: member.description for member in cast if member.description}
    action = re.sub(r"\s+", " ", seen).strip().rstrip(".")
    action = re.split(r"(?<=[.!?;])\s", action)[0] if len(action) > 160 else action
    parts = [action[:200].rstrip(" ,.;")]
    parts += [f"{name}: {looks[name]}" for name in who if name in looks]
    if where and where.lower() not in action.lower():
        parts.append(where)
    light = [word for word in when.split(", ") if word and word not in action.lower()][:2]
    parts += light
    parts.append("storybook illustration")
    return ", ".join(part for part in parts if part)[:MAX_BEAT_PROMPT_CHARS]


# --- the LLM's proposal, validated --------------------------------------------------------------------------------

LLM_INSTRUCTIONS = (
    "Split this passage into beats: one visual moment each (who, where, what happens, the light). "
    'Answer with a JSON list only, one object per beat in order: {"starts_with": "<the first 4-8 words of the beat, '
    'copied exactly>", "prompt": "<an image prompt for the beat>"}.\n\nPassage:\n'
)


def beats_from_answer(passage: str, answer: str, cast: Sequence[CastMember] = ()) -> list[Beat]:
    """The beats an LLM proposed, checked against the passage; PlanError when they do not fit it."""
    match = re.search(r"\[.*\]", answer, re.S)
    try:
        items = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError as e:
        raise PlanError("The proposed beats are not valid JSON.") from e
    if not isinstance(items, list) or not items or len(items) > MAX_BEATS:
        raise PlanError("The proposal is not a list of beats.")
    starts: list[tuple[int, str]] = []
    position = 0
    for item in items:
        if not isinstance(item, dict) or not str(item.get("starts_with", "")).strip():
            raise PlanError("A proposed beat has no start.")
        words = str(item["starts_with"]).split()
        found = re.compile(r"\W+".join(re.escape(w) for w in words), re.I).search(passage, position)
        if found is None:
            raise PlanError(f"A proposed beat starts with words the passage does not have: {' '.join(words)!r}.")
        starts.append((found.start(), str(item.get("prompt", "")).strip()[:MAX_BEAT_PROMPT_CHARS]))
        position = found.end()
    first = len(passage) - len(passage.lstrip())
    starts[0] = (first, starts[0][1])  # whatever comes before the first beat belongs to it
    beats = []
    for i, (start, prompt) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(passage)
        end = start + len(passage[start:end].rstrip())
        if end <= start:
            raise PlanError("Two proposed beats start at the same place.")
        beats.append(describe_beat(passage, start, end, cast, prompt))
    return beats


def propose_beats(passage: str, cast: Sequence[CastMember] = (), complete: Complete | None = None) -> BeatProposal:
    """The beats of a passage: the LLM's proposal when one is given and it fits the passage, else the rules'."""
    passage = _check_passage(passage)
    if complete is not None:
        try:
            return BeatProposal(beats_from_answer(passage, complete(LLM_INSTRUCTIONS + passage), cast), "llm")
        except PlanError as e:
            logger.info("The LLM's beats were not usable (%s); the rules split the passage", e)
            return BeatProposal(split_into_beats(passage, cast), "rules", [str(e)])
    return BeatProposal(split_into_beats(passage, cast), "rules")


# --- the writer's changes to the list -----------------------------------------------------------------------------


def _at(beats: Sequence[Beat], index: int) -> Beat:
    if not 0 <= index < len(beats):
        raise InvalidInput(f"There is no beat {index + 1}; the story has {len(beats)}.")
    return beats[index]


def edit_beat(beats: Sequence[Beat], index: int, prompt: str) -> list[Beat]:
    """The beats with one beat's prompt replaced by the writer's."""
    if not prompt.strip():
        raise InvalidInput("A beat's prompt cannot be empty.")
    return [replace(b, prompt=prompt.strip()[:MAX_BEAT_PROMPT_CHARS]) if i == index else b for i, b in enumerate(beats)]


def drop_beat(beats: Sequence[Beat], index: int) -> list[Beat]:
    """The beats without one (its text stays in the passage, shown without a picture)."""
    _at(beats, index)
    return [b for i, b in enumerate(beats) if i != index]


def move_beat(beats: Sequence[Beat], index: int, to: int) -> list[Beat]:
    """The beats with one moved to another place in the drawing order."""
    _at(beats, index)
    moved = list(beats)
    beat = moved.pop(index)
    moved.insert(max(0, min(to, len(moved))), beat)
    return moved


def merge_beats(passage: str, beats: Sequence[Beat], index: int, cast: Sequence[CastMember] = ()) -> list[Beat]:
    """The beats with one joined to the next into one moment (a fresh prompt; the pictures are let go)."""
    first, second = _at(beats, index), _at(beats, index + 1)
    joined = describe_beat(passage, min(first.start, second.start), max(first.end, second.end), cast)
    return [*beats[:index], joined, *beats[index + 2 :]]


def split_beat(passage: str, beats: Sequence[Beat], index: int, at: int, cast: Sequence[CastMember] = ()) -> list[Beat]:
    """The beats with one cut in two at passage offset `at` (moved to the nearest word break)."""
    beat = _at(beats, index)
    while beat.start < at < beat.end and not passage[at - 1].isspace():
        at += 1
    if not beat.start < at < beat.end or not passage[beat.start : at].strip() or not passage[at : beat.end].strip():
        raise InvalidInput("A beat can only be split inside its own text.")
    head_end = beat.start + len(passage[beat.start : at].rstrip())
    tail_start = at + len(passage[at : beat.end]) - len(passage[at : beat.end].lstrip())
    parts = [describe_beat(passage, beat.start, head_end, cast), describe_beat(passage, tail_start, beat.end, cast)]
    return [*beats[:index], *parts, *beats[index + 1 :]]


def continue_from_previous(beats: Sequence[Beat], index: int, on: bool = True) -> list[Beat]:
    """The beats with one marked to be drawn as an edit of the previous beat's picture (or not)."""
    if on and index == 0:
        raise InvalidInput("The first beat has no previous picture to continue from.")
    _at(beats, index)
    return [replace(b, continue_previous=on) if i == index else b for i, b in enumerate(beats)]
