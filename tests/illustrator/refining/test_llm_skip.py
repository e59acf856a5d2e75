"""The sheet asks the LLM only where the rules are not certain, and prepares the next ask after each turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from illustrator.offline import build_offline_refiner_model
from illustrator.plan import ChatMessage, RefinerState
from illustrator.refiner import LLMRefiner
from illustrator.refining.proposal import change_messages, needs_llm, unread_words
from illustrator.refining.reading import read_message
from illustrator.refining.turn import SheetRefiner, current_sheet
from tests.illustrator.test_refiner import ScriptedLLMRefiner

MERMAID = "a mermaid with long black hair sitting on a rock"
PASSAGE = "Later that night she stood on her rock and sang to the drowned bells while the fishermen rowed home."
CHANGE = (
    '{"action": "new", "changes": [{"op": "focus", "subject": "mermaid"}, '
    '{"op": "set", "attribute": "pose", "value": "singing"}]}'
)


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """The offline tiny Qwen2 model (random weights) and its byte-level tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_offline_refiner_model(tmp_path_factory.mktemp("models") / "refiner")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def mermaid_state() -> RefinerState:
    plan = SheetRefiner().refine([ChatMessage("user", MERMAID)], RefinerState())
    return RefinerState(plan.prompt, plan.negative_prompt, True, sheet=plan.sheet)


@pytest.mark.parametrize(
    ("message", "certain"),
    [
        ("make her hair red", True),  # a plain edit, every word read
        ("give her a silver necklace", True),
        ("undo that", True),
        ("keep her hair", True),  # a lock
        ("another one", True),  # a variation
        ("a knight in silver armour on a cliff", True),  # a new picture in plain terms
        (PASSAGE, False),  # a story passage
        ('"Where are you going?" she asked the old sailor, her voice shaking in the cold wind.', False),  # dialogue
    ],
)
def test_the_llm_is_needed_only_where_the_rules_are_not_certain(message: str, certain: bool) -> None:
    state = mermaid_state()
    reading = read_message(message, current_sheet(state), has_picture=True)
    assert needs_llm(reading) is not certain


def test_words_the_rules_left_unread_are_found() -> None:
    reading = read_message("make her hair red", current_sheet(mermaid_state()), has_picture=True)
    assert unread_words(reading) == set()
    from dataclasses import replace

    assert unread_words(replace(reading, wish=reading.wish + " like autumn storms")) == {"autumn", "storm"}


def test_a_certain_wish_never_reaches_the_llm_and_a_passage_does(tiny_llm: tuple[Any, Any]) -> None:
    llm = ScriptedLLMRefiner(*tiny_llm, [CHANGE])
    refiner = SheetRefiner(llm)
    plan = refiner.refine([ChatMessage("user", MERMAID)], RefinerState())
    assert llm.seen == [] and refiner.last_asked is False and plan.source == "fallback"
    state = RefinerState(plan.prompt, plan.negative_prompt, True, sheet=plan.sheet)
    conversation = [ChatMessage("user", MERMAID), ChatMessage("assistant", plan.reply)]
    edit = refiner.refine([*conversation, ChatMessage("user", "make her hair red")], state)
    assert llm.seen == [] and refiner.last_asked is False and "long red hair" in edit.prompt
    story = refiner.refine([*conversation, ChatMessage("user", PASSAGE)], state)
    assert len(llm.seen) == 1 and refiner.last_asked is True
    assert story.source == "llm" and "singing" in story.prompt


def test_warming_prefills_the_change_prompt_up_to_the_wish(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    llm = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=4, max_context_tokens=4096)
    refiner = SheetRefiner(llm)
    assert refiner.prepares_ahead
    assert not SheetRefiner(LLMRefiner(model, tokenizer, name="plain")).prepares_ahead  # no kept caches
    assert not SheetRefiner().prepares_ahead and SheetRefiner().warm([], RefinerState()) == 0
    state = mermaid_state()
    warmed = refiner.warm([ChatMessage("user", MERMAID)], state)
    messages = change_messages(PASSAGE, current_sheet(state))
    total = len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])
    assert 0 < warmed < total and "mermaid" in tokenizer.decode(list(llm.kept._entries[0].ids))
    assert refiner.warm([ChatMessage("user", MERMAID)], state) == 0  # already prepared
    refiner.refine([ChatMessage("user", MERMAID), ChatMessage("user", PASSAGE)], state)
    assert refiner.last_asked and llm.last_prefill_tokens <= total - warmed + 1  # only the wish and the prompt's end


def test_the_service_prepares_the_next_change_prompt_on_the_new_sheet(
    tiny_llm: tuple[Any, Any], data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from illustrator.models import load_generator
    from illustrator.settings import Settings
    from tests.illustrator.test_service import make_service

    model, tokenizer = tiny_llm
    generator = load_generator(Settings(data_dir=tmp_path_factory.mktemp("models"), offline=True), [])
    llm = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=4, max_context_tokens=4096)
    refiner = SheetRefiner(llm)
    service, _ = make_service(data_dir, generator, refiner)
    first = service.send(None, MERMAID)
    assert refiner.last_asked is False and llm.last_timing is None  # the rules were certain: no LLM call
    service.wait_until_prepared()
    assert llm.kept is not None and len(llm.kept) == 1  # the change prompt on the mermaid's sheet, up to the wish
    passage = "Later she stood on her rock and sang to the drowned bells as the fishermen rowed home."
    service.send(first.session_id, passage)
    assert refiner.last_asked
    sheet = current_sheet(RefinerState(sheet=first.plan.sheet))
    messages = change_messages(passage, sheet)
    total = len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])
    assert llm.last_prefill_tokens < len(passage) + 20 < total / 2  # the wish (a token a character) and the end
