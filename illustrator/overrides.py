"""What the writer's one-turn overrides change in the reply: it must describe the picture actually drawn."""

from __future__ import annotations

from illustrator.plan import Action, Plan

_DRAWN = {
    Action.NEW: "Here is a new picture",
    Action.EDIT: "Here is the edited picture",
    Action.VARIATION: "Here is another version of the picture",
}


def honest_reply(refined: Plan, action: Action, *, own_prompt: bool) -> str:
    """The refiner's reply when it still describes the drawing; otherwise a reply that says what was drawn and why."""
    if action is refined.action and not own_prompt:
        return refined.reply
    reasons = []
    if action is not refined.action:
        reasons.append("the action you chose under the controls")
    if own_prompt:
        reasons.append("your own prompt")
    return f"{_DRAWN[action]}, drawn with {' and '.join(reasons)}."
