"""The plan: what the refiner decided one chat turn should draw, and the conversation it read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Literal

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


@dataclass(frozen=True)
class Plan:
    """The refined prompt and the action for one turn."""

    prompt: str
    negative_prompt: str
    action: Action
    strength: float | None
    reply: str
    source: str = "fallback"  # which refiner made it: "llm" or "fallback"

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able values (the schema the LLM is asked for, plus `source`)."""
        data = asdict(self)
        data["action"] = self.action.value
        return data
