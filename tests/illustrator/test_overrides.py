"""The reply of a turn whose action or prompt the writer overrode describes what was drawn."""

from __future__ import annotations

from illustrator.overrides import honest_reply
from illustrator.plan import Action, Plan

EDIT = Plan("a girl, blue hair", "", Action.EDIT, 0.5, "Editing the picture: blue hair.")


def test_the_refiners_reply_stands_when_nothing_was_overridden() -> None:
    assert honest_reply(EDIT, Action.EDIT, own_prompt=False) == "Editing the picture: blue hair."


def test_an_overridden_action_and_prompt_are_said() -> None:
    reply = honest_reply(EDIT, Action.NEW, own_prompt=True)
    assert reply == "Here is a new picture, drawn with the action you chose under the controls and your own prompt."
    assert "Editing" not in honest_reply(EDIT, Action.EDIT, own_prompt=True)
