"""The story sheet, turn by turn with the rules: what a writer asks for is changed, and nothing else."""

from __future__ import annotations

import pytest

from illustrator.errors import InvalidInput, NotFound, PlanError
from illustrator.plan import Action, ChatMessage, Plan, RefinerState
from illustrator.refining.cast import bring_character, bring_request
from illustrator.refining.changes import Op, apply_changes, parse_ops
from illustrator.refining.render import estimate_tokens, render
from illustrator.refining.sheet import Sheet, Subject, Value
from illustrator.refining.turn import SheetRefiner, sheet_from_prompt


def play(*messages: str) -> list[Plan]:
    """Replay the writer's messages as the app does, carrying each picture's sheet and the sheets before it."""
    refiner, state, conversation, plans = SheetRefiner(), RefinerState(), [], []
    earlier: tuple[dict, ...] = ()
    for message in messages:
        conversation.append(ChatMessage("user", message))
        plan = refiner.refine(conversation, state)
        plans.append(plan)
        conversation.append(ChatMessage("assistant", plan.reply))
        earlier = (*earlier, state.sheet) if state.sheet else earlier
        state = RefinerState(plan.prompt, plan.negative_prompt, True, sheet=plan.sheet, earlier=earlier)
    return plans


def test_go_back_to_the_witch_edits_the_witch_not_the_lighthouse() -> None:
    plans = play(
        "a witch with a black cloak in a summer meadow",
        "draw a lighthouse on a cliff instead",
        "go back to the witch and make her cloak green",
    )
    assert "witch" not in plans[1].prompt and "lighthouse" in plans[1].prompt
    last = plans[-1]
    assert "green cloak" in last.prompt and "meadow" in last.prompt
    assert "lighthouse" not in last.prompt and "black" not in last.prompt
    assert last.action is Action.NEW


def test_contradicted_values_are_replaced() -> None:
    winter = play("a witch in a summer forest", "winter now")[-1]
    assert "winter" in winter.prompt and "summer" not in winter.prompt
    raven = play("a witch with three ravens", "just one raven")[-1]
    assert "one raven" in raven.prompt and "three" not in raven.prompt
    red = play("a girl with blue hair", "make her hair red", "make her hair blue", "actually go back to red")[-1]
    assert "red hair" in red.prompt and "blue" not in red.prompt and "actually" not in red.prompt


def test_undo_restores_the_sheet_before() -> None:
    plans = play("a knight in silver armour", "make his armour gold", "undo that")
    assert "silver armour" in plans[-1].prompt and "gold" not in plans[-1].prompt and "undo" not in plans[-1].prompt


def test_a_named_character_keeps_his_look_in_a_new_scene() -> None:
    plans = play("Meet Kael: shaved head, crow tattoo, leather jacket", "now draw Kael in a night market")
    last = plans[-1]
    assert last.action is Action.NEW
    for term in ("Kael", "shaved head", "crow tattoo", "leather jacket", "night market"):
        assert term in last.prompt
    assert "meet" not in last.prompt.lower()


def test_narrative_text_is_read_for_what_can_be_seen() -> None:
    plan = play("Chapter one. Elena climbed the tower stairs with a candle while the storm rattled the windows")[0]
    for term in ("Elena", "tower stairs", "candle", "storm"):
        assert term in plan.prompt
    assert "chapter" not in plan.prompt.lower() and "climbed" not in plan.prompt


def test_a_removed_thing_goes_to_the_negative_and_never_contradicts_the_positive() -> None:
    plans = play("a wizard holding a lantern", "remove the lantern", "now he holds a lantern again")
    assert "lantern" not in plans[1].prompt and "lantern" in plans[1].negative_prompt
    assert "lantern" in plans[2].prompt and "lantern" not in plans[2].negative_prompt


def test_a_locked_value_survives_a_wish_to_change_it_and_the_reply_says_so() -> None:
    plans = play("a mermaid with long black hair", "keep her hair", "make her hair red", "unlock her hair", "red hair")
    assert "long black hair" in plans[2].prompt and "red" not in plans[2].prompt
    assert "locked" in plans[2].reply
    assert "long red hair" in plans[-1].prompt


def test_a_foreign_edit_changes_the_attribute() -> None:
    assert "long red hair" in play("a mermaid with long black hair", "hazlo su pelo rojo")[-1].prompt


def test_the_reply_shows_the_diff() -> None:
    plan = play("a girl with black hair", "make her hair red and give her a lantern")[-1]
    assert "hair: black → red" in plan.reply and "lantern" in plan.reply


def test_a_long_accumulation_stays_within_the_budget_and_says_what_was_left_out() -> None:
    plans = play(
        "an old sea captain with a grey beard, a blue coat with brass buttons, a tricorn hat and a wooden leg",
        "give him a parrot on his shoulder and a spyglass in his hand",
        "add a scar over his left eye, a golden earring and a red sash around his waist",
        "put him on the deck of a ship at sunset in a storm with huge waves and lightning",
        "add a treasure map, a lantern and a cutlass on his belt",
    )
    last = plans[-1]
    assert estimate_tokens(last.prompt) <= 75
    assert "captain" in last.prompt and "grey beard" in last.prompt  # the subject and its first look are kept
    assert "Left out to fit the prompt" in last.reply


def test_render_puts_the_focus_first_and_drops_the_house_style_silently() -> None:
    sheet = Sheet(
        cast=(
            Subject("cat", "cat", "cat", {"cat": Value("black cat")}),
            Subject("witch", "witch", "witch", {"witch": Value("witch")}),
        ),
        visible=("cat", "witch"),
        focus="witch",
    )
    rendered = render(sheet)
    assert rendered.prompt.startswith("witch, black cat")
    tight = render(sheet, budget=6)
    assert tight.prompt == "witch, black cat" and tight.left_out == ()


def test_changes_validate_and_refuse_locked_values() -> None:
    with pytest.raises(PlanError):
        parse_ops([{"op": "explode"}])
    with pytest.raises(PlanError):
        parse_ops([{"op": "set", "value": "red hair"}])  # no attribute
    ops = parse_ops({"changes": [{"op": "set", "attribute": "hair", "value": "red hair"}]})
    sheet = Sheet(
        cast=(Subject("girl", "girl", "girl", {"hair": Value("black hair", locked=True)}),),
        visible=("girl",),
        focus="girl",
    )
    result = apply_changes(sheet, ops)
    assert result.sheet == sheet and result.diff == () and "locked" in result.refused[0]
    unlocked = apply_changes(sheet, [Op("unlock", attribute="hair"), *ops])
    assert set(unlocked.diff) == {"unlocked: hair", "hair: black → red"} and not unlocked.refused


def test_sheets_round_trip_through_json_and_bad_ones_are_refused() -> None:
    sheet = play("a witch with three ravens in a summer meadow at dusk", "keep her witch")[-1].sheet
    assert sheet is not None
    assert Sheet.from_dict(sheet).to_dict() == sheet
    with pytest.raises(InvalidInput):
        Sheet.from_dict({"cast": [{"name": "no key"}]})
    with pytest.raises(InvalidInput):
        Sheet.from_dict({"version": 99})


def test_a_picture_drawn_before_sheets_is_read_from_its_prompt() -> None:
    sheet = sheet_from_prompt("a mermaid, long black hair, sitting on a rock, at night, detailed illustration")
    mermaid = sheet.subject(sheet.focus)
    assert mermaid is not None and mermaid.attributes["hair"].text == "long black hair"
    assert sheet.scene["time_of_day"].text == "at night"


def test_a_character_is_brought_from_another_session() -> None:
    crow_city = Sheet.from_dict(play("Meet Kael: shaved head, crow tattoo, leather jacket")[0].sheet or {})
    request = bring_request("bring Kael from 'Crow City' into the tavern")
    assert request is not None and (request.name, request.session_title, request.rest) == (
        "Kael",
        "Crow City",
        "into the tavern",
    )
    here = bring_character(Sheet(), crow_city, "Kael")
    kael = here.find("kael")
    assert kael is not None and kael.attributes["tattoo"].text == "crow tattoo"
    with pytest.raises(NotFound):
        bring_character(Sheet(), crow_city, "Mira")


def test_english_words_that_look_foreign_stay_as_they_are() -> None:
    plan = play("an old wizard in a star-covered blue robe with a crooked staff, his son beside him")[0]
    assert "robe" in plan.prompt and "dress" not in plan.prompt and "son" in plan.prompt
    assert "wizard" in plan.prompt  # a description with past participles is not read as a story passage
