"""The plan: what the refiner decided one chat turn should draw, the conversation it read, and plan parsing."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any, Literal

from illustrator.errors import PlanError

MAX_PROMPT_CHARS = 1000
MIN_STRENGTH = 0.05
MAX_STRENGTH = 1.0


class Action(str, Enum):
    """What the generator does with a plan."""

    NEW = "new"  # txt2img
    EDIT = "edit"  # img2img on the current picture
    VARIATION = "variation"  # same prompt, new seed


@dataclass(frozen=True)
class ChatMessage:
    """One message of the conversation as the refiner reads it."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class RefinerState:
    """What the refiner knows besides the conversation: the picture the next turn would edit."""

    last_prompt: str | None = None
    last_negative_prompt: str | None = None
    has_picture: bool = False
    details: tuple[str, ...] = field(default_factory=tuple)  # established details, oldest first
    sheet: dict[str, Any] | None = None  # the story sheet of that picture (illustrator/refining/sheet.py)
    earlier: tuple[dict[str, Any], ...] = ()  # the sheets of the pictures before it, oldest first (for undo)
    drawn: dict[str, Any] | None = None  # the sheet that picture was drawn from, when the writer edited it since


@dataclass(frozen=True)
class Plan:
    """The refined prompt and the action for one turn."""

    prompt: str
    negative_prompt: str
    action: Action
    strength: float | None
    reply: str
    source: str = "fallback"  # which refiner made it: "llm" or "fallback"
    sheet: dict[str, Any] | None = None  # the story sheet the prompt was rendered from, when there is one
    changes: tuple[str, ...] = ()  # what changed on the sheet, one line each ("hair: black → red")
    draws: bool = True  # False: the turn only changes the sheet (a lock said in chat); nothing is drawn

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able values (the schema the LLM is asked for, `source`, the sheet and its diff)."""
        data = asdict(self)
        data["action"] = self.action.value
        if self.draws:  # only a turn that draws nothing says so
            del data["draws"]
        if self.sheet is None:  # a plan made without the story sheet keeps the schema it always had
            del data["sheet"], data["changes"]
        else:
            data["changes"] = list(self.changes)
        return data


DEFAULT_EDIT_STRENGTH = 0.55
MAX_REPLY_CHARS = 300
_DEFAULT_REPLIES = {
    Action.NEW: "Here is a new picture.",
    Action.EDIT: "Here is the edited picture.",
    Action.VARIATION: "Here is another version of the picture.",
}
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def parse_plan(text: str, state: RefinerState, *, source: str = "llm") -> Plan:
    """Turn raw LLM output (a JSON object, maybe inside prose or code fences) into a valid plan, or raise PlanError."""
    data = _first_json_object(text)
    if data is None:
        raise PlanError("The refiner's answer contained no JSON object.")

    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise PlanError("The refiner's plan has no text prompt.")
    negative = data.get("negative_prompt")
    if negative is None:
        negative = ""
    elif isinstance(negative, list) and all(isinstance(item, str) for item in negative):
        negative = ", ".join(negative)
    elif not isinstance(negative, str):
        raise PlanError("The refiner's negative prompt is not text.")
    raw_action = data.get("action")
    if not isinstance(raw_action, str) or raw_action.strip().lower() not in {a.value for a in Action}:
        raise PlanError(f"The refiner chose an unknown action ({raw_action!r}); expected new, edit or variation.")
    reply = data.get("reply")
    if not isinstance(reply, str):
        reply = ""

    plan = Plan(
        prompt=prompt,
        negative_prompt=negative,
        action=Action(raw_action.strip().lower()),
        strength=_parse_strength(data.get("strength")),
        reply=reply,
        source=source,
    )
    return validate_plan(plan, state)


def validate_plan(plan: Plan, state: RefinerState) -> Plan:
    """Return the plan normalised to the schema's rules (clean prompt, possible action, strength in range)."""
    prompt = _clean_text(plan.prompt, MAX_PROMPT_CHARS)
    if not prompt:
        raise PlanError("The refiner's plan has an empty prompt.")
    negative = _clean_text(plan.negative_prompt, MAX_PROMPT_CHARS)

    action = plan.action
    if action is not Action.NEW and not state.has_picture:
        action = Action.NEW  # there is no picture to edit or vary

    strength: float | None = None
    if action is Action.EDIT:
        strength = DEFAULT_EDIT_STRENGTH if plan.strength is None else plan.strength
        strength = round(min(MAX_STRENGTH, max(MIN_STRENGTH, strength)), 3)

    reply = _clean_text(plan.reply, MAX_REPLY_CHARS)
    if not reply or action is not plan.action:
        reply = _DEFAULT_REPLIES[action]  # a reply about an edit would be wrong once the action changed

    return replace(plan, prompt=prompt, negative_prompt=negative, action=action, strength=strength, reply=reply)


def _parse_strength(value: object) -> float | None:
    """A strength from JSON: a number, a numeric string, or missing/null."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PlanError("The refiner's strength is not a number.")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError as e:
            raise PlanError("The refiner's strength is not a number.") from e
    else:
        raise PlanError("The refiner's strength is not a number.")
    if not math.isfinite(number):
        raise PlanError("The refiner's strength is not a finite number.")
    return number


def _clean_text(text: str, limit: int) -> str:
    """Strip, collapse whitespace, and cut to `limit` characters at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # drop the word that the limit cuts through
    return cut[:limit].rstrip(" ,;:")


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (tolerating prose, code fences, trailing junk and trailing commas)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            candidate = _balanced_object(text, start)
            value = None
            if candidate is not None:
                try:
                    value = json.loads(_TRAILING_COMMA.sub(r"\1", candidate))
                except json.JSONDecodeError:
                    value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _balanced_object(text: str, start: int) -> str | None:
    """The text from `start` to its matching closing brace, skipping braces inside strings."""
    depth = 0
    in_string = escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None
