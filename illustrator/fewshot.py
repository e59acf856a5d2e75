"""A refiner for base (not chat-tuned) language models: a few-shot completion prompt and a one-line plan."""

from __future__ import annotations

import re
from collections.abc import Sequence

from illustrator.errors import PlanError
from illustrator.plan import Action, ChatMessage, Plan, RefinerState, validate_plan
from illustrator.refiner import LLMRefiner
from illustrator.rules import DEFAULT_NEGATIVE_PROMPT, edit_prompt, new_prompt, without_injections, without_style

MAX_WISH_CHARS = 400
# A base model continues text: show it the format by example and stop at the end of the first line it writes.
# For an edit it writes only what changes, and the rules merge that into the picture's prompt: a model this small
# copies a long prompt unreliably, while a short line of changed terms is what it does well (and fast).
FEW_SHOT_PROMPT = """Plans for a story illustrator. Each wish of the writer becomes one plan line:
new | the whole new picture
edit STRENGTH | only what changes (0.35 small tweak, 0.55 changed detail or added object, 0.75 new pose or place)
variation |   (the same picture again)
Plans use visual terms: no wish wording (make, now, please, can you), feelings become light, colour and composition.

Picture: none
Wish: an old sailor with a grey beard in a yellow raincoat
Plan: new | an old sailor, grey beard, yellow raincoat

Picture: an old sailor, grey beard, yellow raincoat
Wish: make his raincoat blue please
Plan: edit 0.55 | blue raincoat

Picture: an old sailor, grey beard, blue raincoat
Wish: now he is rowing a small boat
Plan: edit 0.75 | rowing a small boat

Picture: an old sailor, grey beard, blue raincoat, rowing a small boat
Wish: a touch more contrast
Plan: edit 0.35 | high contrast

Picture: an old sailor, grey beard, blue raincoat, rowing a small boat, high contrast
Wish: can you try again?
Plan: variation |

Picture: an old sailor, grey beard, blue raincoat, rowing a small boat, high contrast
Wish: take away the boat and give him a parrot
Plan: edit 0.55 | without boat, a parrot on his shoulder

Picture: an old sailor, grey beard, blue raincoat, a parrot on his shoulder
Wish: draw a castle in the clouds instead
Plan: new | a castle in the clouds

Picture: a castle in the clouds
Wish: make it feel lonelier
Plan: edit 0.55 | wide empty sky, cold muted colours, dim light

Picture: none
Wish: a boy whose laughter is like spring
Plan: new | a laughing boy, warm soft sunlight, fresh green and pastel colours
"""
_STOP_WORDS = set("the and with draw make picture detailed illustration soft light now new".split())
_PLAN_LINE = re.compile(r"^\s*(new|edit|variation)\b\s*([0-9]*\.?[0-9]+)?\s*\|?\s*(.*?)\s*$", re.IGNORECASE)


class FewShotRefiner(LLMRefiner):
    """The LLM refiner for base models (no chat template): few-shot examples, then the plan line it continues."""

    def __init__(
        self, *args: object, max_new_tokens: int = 96, prompt_lookup_tokens: int = 0, **kwargs: object
    ) -> None:
        # Its answer is one short line after over a thousand tokens of examples: the kept cache of the examples saves
        # far more than prompt lookup would (and transformers cannot do both at once; see LLMRefiner).
        super().__init__(
            *args,
            max_new_tokens=max_new_tokens,
            prompt_lookup_tokens=prompt_lookup_tokens,
            **kwargs,  # type: ignore[arg-type]
        )

    def prompt_text(self, conversation: Sequence[ChatMessage], state: RefinerState) -> str:
        """The exact text the model continues: the examples, the current picture, the latest wish."""
        picture = without_style(state.last_prompt) if state.has_picture and state.last_prompt else "none"
        forced = "" if state.has_picture else " new |"  # without a picture the action can only be new
        wish = _one_line(self._wish(conversation))
        return f"{FEW_SHOT_PROMPT}\nPicture: {_one_line(picture)}\nWish: {wish}\nPlan:{forced}"

    def fixed_prefix_ids(self) -> list[int]:
        """The tokens every prompt starts with: the few-shot examples."""
        return list(self.tokenizer(FEW_SHOT_PROMPT)["input_ids"])

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        """Ask the model for a plan line; a wish with nothing to draw, or an unusable line, goes to the fallback."""
        if not self._wish(conversation):
            return self.fallback.refine(conversation, state)  # only orders to the refiner, nothing to draw
        return super().refine(conversation, state)

    def _plan(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        inputs = self.tokenizer(self.prompt_text(conversation, state), return_tensors="pt")
        answer = self._complete(inputs, lambda text: "\n" in text)
        line = answer.split("\n", 1)[0]
        plan = plan_from_line(line if state.has_picture else "new |" + line, state)
        if plan.action is Action.NEW and not _content_words(plan.prompt) & _content_words(self._wish(conversation)):
            raise PlanError(f"The refiner drew something the writer did not mention: {line[:80]!r}.")
        return plan

    def _wish(self, conversation: Sequence[ChatMessage]) -> str:
        wish = next((m.content for m in reversed(conversation) if m.role == "user" and m.content.strip()), "")
        return without_injections(self._sanitize(wish)).strip(" .")


def plan_from_line(line: str, state: RefinerState) -> Plan:
    """Turn a plan line ("edit 0.55 | gold armour") into a valid plan, merging an edit into the picture's prompt."""
    match = _PLAN_LINE.match(line)
    if match is None:
        raise PlanError(f"The refiner's answer is not a plan line: {line[:80]!r}.")
    action, terms = Action(match[1].lower()), match[3]
    if action is not Action.VARIATION and terms and not re.search(r"[^\W\d_]{2}", terms):
        raise PlanError(f"The refiner's plan line has no words: {line[:80]!r}.")
    negative = state.last_negative_prompt or DEFAULT_NEGATIVE_PROMPT
    strength = float(match[2]) if match[2] and action is Action.EDIT else None
    base = state.last_prompt if state.has_picture and state.last_prompt else ""
    if action is Action.EDIT and base and terms:
        prompt, negative, _, _ = edit_prompt(base, negative, terms)
    elif action is Action.NEW or not base:
        if not terms:
            raise PlanError("The refiner's plan line for a new picture has no prompt.")
        prompt = new_prompt(terms)
        negative = DEFAULT_NEGATIVE_PROMPT
    else:
        prompt = base  # a variation, or an edit that named no change
    return validate_plan(Plan(prompt, negative, action, strength, "", source="llm"), state)


def _content_words(text: str) -> set[str]:
    """The words of three letters or more, singular, for telling whether a new prompt is about the wish at all."""
    return {w.removesuffix("s") for w in re.findall(r"[^\W\d_]{3,}", text.lower())} - _STOP_WORDS


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_WISH_CHARS else text[:MAX_WISH_CHARS].rsplit(" ", 1)[0]
