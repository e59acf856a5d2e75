"""The LLM beat path attached to the app's refiner: the offline preset's tiny real Qwen2, as the app loads it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from illustrator.models import load_refiner_for, sheet_refiner
from illustrator.refiner import FallbackRefiner, Refiner
from illustrator.settings import Settings
from illustrator.stories import StoryService
from illustrator.story_llm import LEAD_CHARS, RefinerBeats, language_model
from tests.illustrator.test_service import library_for, make_service
from tests.illustrator.test_stories import POEM


@pytest.fixture(scope="module")
def app_refiner(tmp_path_factory: pytest.TempPathFactory) -> Refiner:
    """The refiner the app runs offline: the tiny Qwen2 (random weights) behind the story sheet."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("story-llm"), offline=True)
    return sheet_refiner(load_refiner_for(settings, []))


class _Script:
    """Scores that make every greedy choice the next token of `script`: the real model, steered to an answer."""

    def __init__(self, script: list[int], start: int) -> None:
        self.script, self.start = script, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.script[min(input_ids.shape[1] - self.start, len(self.script) - 1)]] = 0.0
        return forced


def _stories(data_dir: Path, generator, refiner: Refiner) -> StoryService:
    turns, _ = make_service(data_dir, generator, refiner)
    return StoryService(
        turns._db,
        turns,
        library_for(turns, data_dir),
        find_llm=RefinerBeats(lambda: refiner, ask_placeholders=True).completion,
    )


def test_the_rules_refiner_has_no_llm_for_beats() -> None:
    assert language_model(FallbackRefiner()) is None and language_model(sheet_refiner(FallbackRefiner())) is None
    assert RefinerBeats(lambda: sheet_refiner(FallbackRefiner())).completion() is None


def test_the_apps_llm_proposes_the_beats_when_its_answer_fits(
    app_refiner: Refiner, data_dir: Path, offline_generator
) -> None:
    llm = language_model(app_refiner)
    assert llm is not None and llm.name == "offline preset"
    answer = json.dumps(
        [
            {"starts_with": "The lighthouse keeper climbs the stair", "prompt": "a keeper with a lantern on a stair"},
            {"starts_with": "At dawn a boat comes round", "prompt": "a red sail at dawn"},
        ]
    )
    script = llm.tokenizer(answer, add_special_tokens=False)["input_ids"] + [llm.tokenizer.eos_token_id]
    llm.scores_hook = lambda start: _Script(script, start)
    try:
        proposal = _stories(data_dir, offline_generator, app_refiner).propose(POEM)
    finally:
        llm.scores_hook = None
    assert proposal.source == "llm" and [b.prompt for b in proposal.beats] == [
        "a keeper with a lantern on a stair",
        "a red sail at dawn",
    ]
    assert proposal.beats[1].text.startswith("At dawn") and proposal.beats[1].end == len(POEM.rstrip())


def test_a_rambling_llm_falls_back_to_the_rules(
    app_refiner: Refiner, data_dir: Path, offline_generator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="illustrator.story"):
        proposal = _stories(data_dir, offline_generator, app_refiner).propose(POEM)  # random weights ramble
    assert proposal.source == "rules" and len(proposal.beats) == 3 and proposal.notes
    assert "not usable" in caplog.text
    timing = language_model(app_refiner).last_timing  # type: ignore[union-attr]
    assert timing is not None and timing.new_tokens <= LEAD_CHARS + 1  # stopped once no list could come of it


def test_a_passage_too_long_for_the_llm_goes_to_the_rules(
    app_refiner: Refiner, data_dir: Path, offline_generator
) -> None:
    passage = "\n\n".join([POEM] * 12)  # the preset spends a token per byte: past its 4,096-token context
    proposal = _stories(data_dir, offline_generator, app_refiner).propose(passage)
    assert proposal.source == "rules" and "too long" in proposal.notes[0]


def test_the_offline_presets_random_llm_is_not_asked_for_beats_in_the_app(app_refiner: Refiner) -> None:
    assert language_model(app_refiner) is not None  # it is an LLM ...
    assert RefinerBeats(lambda: app_refiner).completion() is None  # ... whose answers are not worth waiting for
    assert RefinerBeats(lambda: app_refiner, ask_placeholders=True).completion() is not None
