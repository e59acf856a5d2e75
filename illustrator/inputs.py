"""The rules for what a writer (or an API caller) may send: messages and the overrides of one turn.

Messages are stored exactly as typed, emoji and every script included, after trimming the whitespace around them.
Refused, each with one plain sentence: an empty message, one over the length limit, control characters other than
newline, carriage return and tab (terminal escapes, NUL, bells: never part of a story), and text that is not valid
Unicode (lone surrogates, which cannot be saved). Every check runs on the server, whatever the browser allowed.
"""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING, Any

from illustrator.errors import InvalidInput

if TYPE_CHECKING:
    from illustrator.service import TurnOptions

ALLOWED_CONTROLS = frozenset("\n\r\t")
MAX_PICTURE_ID = 2**63 - 1
MAX_CANDIDATES = 4  # pictures drawn for one turn, side by side, for the writer to choose from


def check_message(text: Any, limit: int) -> str:
    """The message without surrounding whitespace; InvalidInput with a plain sentence when it cannot be used."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("Please type a message first.")
    message: str = text.strip()
    if len(message) > limit:
        raise InvalidInput(f"That message is too long: {len(message)} characters (the limit is {limit}).")
    check_text(message, "That message")
    return message


def check_text(text: str, what: str) -> None:
    """Refuse control characters (other than newline, carriage return and tab) and invalid Unicode in `text`."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc" and char not in ALLOWED_CONTROLS:
            raise InvalidInput(f"{what} contains an invisible control character (U+{ord(char):04X}); please remove it.")
        if category == "Cs":
            raise InvalidInput(f"{what} contains characters that are not valid text; please type it again.")


def check_options(options: TurnOptions) -> None:
    """Refuse overrides outside their ranges, naming the first wrong one; None always means "let it decide"."""
    from illustrator.generator import MAX_GUIDANCE_SCALE, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE
    from illustrator.plan import MAX_PROMPT_CHARS

    if options.strength is not None and not (_is_number(options.strength) and 0.0 < options.strength <= 1.0):
        raise InvalidInput(f"strength must be above 0 and at most 1, not {options.strength!r}.")
    if options.steps is not None and not (_is_int(options.steps) and 1 <= options.steps <= MAX_STEPS):
        raise InvalidInput(f"steps must be a whole number from 1 to {MAX_STEPS}, not {options.steps!r}.")
    if options.seed is not None and not (_is_int(options.seed) and 0 <= options.seed <= MAX_SEED):
        raise InvalidInput(f"seed must be a whole number from 0 to {MAX_SEED}, not {options.seed!r}.")
    if options.guidance_scale is not None and not (
        _is_number(options.guidance_scale) and 0.0 <= options.guidance_scale <= MAX_GUIDANCE_SCALE
    ):
        raise InvalidInput(f"guidance_scale must be from 0 to {MAX_GUIDANCE_SCALE:g}, not {options.guidance_scale!r}.")
    for name in ("width", "height"):
        value = getattr(options, name)
        if value is not None and not (_is_int(value) and MIN_SIZE <= value <= MAX_SIZE and value % 8 == 0):
            raise InvalidInput(f"{name} must be a multiple of 8 from {MIN_SIZE} to {MAX_SIZE}, not {value!r}.")
    for name, label in (("prompt", "Your prompt"), ("negative_prompt", "The negative prompt")):
        value = getattr(options, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be text, not {type(value).__name__}.")
        if len(value) > MAX_PROMPT_CHARS:
            raise InvalidInput(f"{label} is too long: {len(value)} characters (the limit is {MAX_PROMPT_CHARS}).")
        check_text(value, label)
    if not (_is_int(options.candidates) and 1 <= options.candidates <= MAX_CANDIDATES):
        raise InvalidInput(f"candidates must be a whole number from 1 to {MAX_CANDIDATES}, not {options.candidates!r}.")
    picture_id = options.base_picture_id
    if picture_id is not None and not (_is_int(picture_id) and 0 < picture_id <= MAX_PICTURE_ID):
        raise InvalidInput(f"base_picture_id must be a picture's number, not {picture_id!r}.")


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """A picture size typed as WIDTHxHEIGHT ("512x768"), or (None, None) for "auto" or nothing."""
    if not size or size == "auto":
        return None, None
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError as e:
        raise InvalidInput(f"Unknown picture size '{size}'.") from e
    return width, height


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
