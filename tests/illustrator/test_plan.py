"""Parsing and validating the refiner's raw output into a plan."""

from __future__ import annotations

import pytest

from illustrator.errors import PlanError
from illustrator.plan import (
    DEFAULT_EDIT_STRENGTH,
    MAX_PROMPT_CHARS,
    MAX_STRENGTH,
    MIN_STRENGTH,
    Action,
    Plan,
    RefinerState,
    parse_plan,
    validate_plan,
)

WITH_PICTURE = RefinerState(last_prompt="a mermaid, long black hair", has_picture=True)
GOOD = (
    '{"prompt": "a mermaid,  long red hair\\n at night", "negative_prompt": "blurry", "action": "edit", '
    '"strength": 0.5, "reply": "Making her hair red."}'
)


def test_good_json_becomes_a_plan() -> None:
    plan = parse_plan(GOOD, WITH_PICTURE)
    assert plan == Plan(
        prompt="a mermaid, long red hair at night",
        negative_prompt="blurry",
        action=Action.EDIT,
        strength=0.5,
        reply="Making her hair red.",
        source="llm",
    )


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{GOOD}\n```",
        f"Sure! Here is the plan you asked for:\n{GOOD}\nI hope you like it. {{not json}}",
        f"{GOOD[:-1]},}}",  # a trailing comma, as small models like to write
        f"{{broken {GOOD} trailing junk }}}}",
    ],
    ids=["fenced", "prose-around", "trailing-comma", "junk-first"],
)
def test_json_is_found_inside_llm_chatter(text: str) -> None:
    plan = parse_plan(text, WITH_PICTURE)
    assert plan.prompt == "a mermaid, long red hair at night"
    assert plan.action is Action.EDIT


def test_braces_inside_strings_do_not_confuse_the_parser() -> None:
    text = 'Plan: {"prompt": "a sign reading {hello}", "action": "new", "reply": "ok",}'
    assert parse_plan(text, RefinerState()).prompt == "a sign reading {hello}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I think a mermaid would look nice.", "no JSON object"),
        ('{"prompt": "a cat", "action": "paint"}', "unknown action"),
        ('{"prompt": "a cat"}', "unknown action"),
        ('{"negative_prompt": "blurry", "action": "new"}', "no text prompt"),
        ('{"prompt": "   ", "action": "new"}', "empty prompt"),
        ('{"prompt": "a cat", "action": "edit", "strength": "strong"}', "not a number"),
        ('{"prompt": "a cat", "action": "new", "negative_prompt": 3}', "negative prompt"),
        ("[1, 2, 3]", "no JSON object"),
    ],
)
def test_unusable_output_raises_plan_error(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(text, WITH_PICTURE)


@pytest.mark.parametrize(
    ("strength", "expected"),
    [("5", MAX_STRENGTH), ("-1", MIN_STRENGTH), ("0.3", 0.3), ('"0.7"', 0.7), ("null", DEFAULT_EDIT_STRENGTH)],
)
def test_edit_strength_is_clamped_or_defaulted(strength: str, expected: float) -> None:
    text = f'{{"prompt": "a cat", "action": "edit", "strength": {strength}}}'
    assert parse_plan(text, WITH_PICTURE).strength == expected


def test_missing_strength_defaults_for_edit() -> None:
    assert parse_plan('{"prompt": "a cat", "action": "edit"}', WITH_PICTURE).strength == DEFAULT_EDIT_STRENGTH


@pytest.mark.parametrize("action", ["new", "variation"])
def test_strength_is_dropped_unless_editing(action: str) -> None:
    plan = parse_plan(f'{{"prompt": "a cat", "action": "{action}", "strength": 0.8}}', WITH_PICTURE)
    assert plan.strength is None
    assert plan.action is Action(action)


@pytest.mark.parametrize("action", ["edit", "variation"])
def test_nothing_to_edit_becomes_new(action: str) -> None:
    text = f'{{"prompt": "a cat", "action": "{action}", "strength": 0.4, "reply": "Editing the cat."}}'
    plan = parse_plan(text, RefinerState(has_picture=False))
    assert plan.action is Action.NEW
    assert plan.strength is None
    assert "Editing" not in plan.reply  # the reply must not promise an edit that will not happen


def test_defaults_for_optional_fields() -> None:
    plan = parse_plan('{"prompt": "a cat", "action": "NEW "}', RefinerState())
    assert (plan.negative_prompt, plan.action) == ("", Action.NEW)
    assert plan.reply  # a short default sentence


def test_long_prompt_is_cut_at_a_word_boundary() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    plan = parse_plan(f'{{"prompt": "{words}", "action": "new"}}', RefinerState())
    assert len(plan.prompt) <= MAX_PROMPT_CHARS
    assert words.startswith(plan.prompt)
    assert words[len(plan.prompt)] == " "  # the cut falls between words


def test_validate_plan_normalises_a_hand_made_plan() -> None:
    plan = Plan(prompt="  a  cat ", negative_prompt="", action=Action.EDIT, strength=3.0, reply="")
    checked = validate_plan(plan, WITH_PICTURE)
    assert (checked.prompt, checked.strength, checked.source) == ("a cat", MAX_STRENGTH, "fallback")
    assert checked.reply
