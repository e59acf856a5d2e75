"""Beats: the rules' split, the LLM's proposal checked against the passage, and the writer's changes to the list."""

from __future__ import annotations

import json

import pytest

from illustrator.errors import InvalidInput
from illustrator.story import (
    MAX_PASSAGE_CHARS,
    Beat,
    CastMember,
    beats_from_json,
    beats_to_json,
    continue_from_previous,
    drop_beat,
    edit_beat,
    merge_beats,
    move_beat,
    propose_beats,
    split_beat,
    split_into_beats,
    visible_text,
)
from illustrator.story_cast import cast_from_sheet, with_looks
from tests.illustrator.test_stories import POEM

CHAPTER = """Chapter One

Elena climbed the tower stairs with a candle while the storm rattled the windows. The wax dripped on her fingers. \
"Who's there?" she called. Nobody answered. "Show yourself," she said again.

At the top of the tower, the door stood open. A man in a long coat waited by the window. "You came," said Marco. \
"I said I would," Elena replied. "Then listen carefully."

The next morning, the village square was full of carts and smoke. Children ran between the stalls, and the baker \
shouted prices over the noise."""


def _starts(passage: str, beats: list[Beat]) -> list[str]:
    return [passage[b.start : b.end].split()[0] for b in beats]


def test_a_poem_has_a_beat_per_stanza_with_exact_spans() -> None:
    beats = split_into_beats(POEM)
    assert [POEM[b.start : b.end] for b in beats] == [stanza.strip() for stanza in POEM.split("\n\n")]
    assert "lantern" in beats[0].prompt and "dawn" in beats[1].when and "snow" in beats[2].when


def test_prose_breaks_at_changes_of_place_and_time_not_at_talk() -> None:
    beats = split_into_beats(CHAPTER, [CastMember("Elena", "a young woman with a red scarf")])
    assert _starts(CHAPTER, beats) == ["Chapter", "At", "The"]
    first, second, third = beats
    assert first.who == ("Elena",) and "a young woman with a red scarf" in first.prompt
    assert "Chapter" not in first.prompt and "Who's there" not in first.prompt and "she called" not in first.prompt
    assert set(second.who) == {"Elena", "Marco"} and second.where == "by the window"
    assert "said Marco" not in second.prompt and "listen carefully" not in second.prompt
    assert third.when == "morning" and "Children ran" in third.prompt


def test_visible_text_drops_speech_and_its_tags() -> None:
    assert visible_text('"You came," said Marco. He lit the lamp.') == "He lit the lamp."
    assert visible_text('Elena replied, "I said I would." Rain fell.') == "Rain fell."


def test_the_llm_proposal_is_used_when_it_fits_the_passage() -> None:
    answer = json.dumps(
        [
            {"starts_with": "Chapter One Elena climbed", "prompt": "Elena on tower stairs with a candle, storm"},
            {"starts_with": "The next morning, the village", "prompt": "a busy village square at morning"},
        ]
    )
    proposal = propose_beats(CHAPTER, complete=lambda prompt: f"Here are the beats:\n{answer}")
    assert proposal.source == "llm"
    assert _starts(CHAPTER, proposal.beats) == ["Chapter", "The"]
    assert proposal.beats[1].prompt == "a busy village square at morning" and proposal.beats[1].end == len(CHAPTER)


@pytest.mark.parametrize(
    "answer",
    [
        "I think the passage has three beats.",  # no JSON
        '[{"starts_with": "Once upon a time", "prompt": "x"}]',  # words the passage does not have
        # out of order
        '[{"starts_with": "The next morning", "prompt": "x"}, {"starts_with": "Elena climbed", "prompt": "y"}]',
        "[]",
    ],
)
def test_an_unusable_llm_proposal_falls_back_to_the_rules(answer: str) -> None:
    proposal = propose_beats(CHAPTER, complete=lambda prompt: answer)
    assert proposal.source == "rules" and len(proposal.beats) == 3 and proposal.notes


def test_the_writers_changes_to_the_beats() -> None:
    beats = split_into_beats(POEM)
    merged = merge_beats(POEM, beats, 0)
    assert len(merged) == 2 and merged[0].start == beats[0].start and merged[0].end == beats[1].end
    split = split_beat(POEM, merged, 0, POEM.index("At dawn") + 4)  # moved to the next word break
    assert split[0].end == POEM.index("At dawn") + 7 and split[1].start == POEM.index("a boat")
    assert len(split) == 3
    assert [b.start for b in move_beat(beats, 2, 0)] == [beats[2].start, beats[0].start, beats[1].start]
    assert [b.start for b in drop_beat(beats, 1)] == [beats[0].start, beats[2].start]
    assert edit_beat(beats, 1, "  a red sail at dawn ")[1].prompt == "a red sail at dawn"
    assert continue_from_previous(beats, 1)[1].continue_previous
    assert beats_from_json(beats_to_json(continue_from_previous(beats, 2))) == continue_from_previous(beats, 2)
    with pytest.raises(InvalidInput):
        continue_from_previous(beats, 0)
    with pytest.raises(InvalidInput):
        edit_beat(beats, 0, "  ")
    with pytest.raises(InvalidInput):
        drop_beat(beats, 3)
    with pytest.raises(InvalidInput):
        split_beat(POEM, beats, 0, beats[1].start + 5)


def test_passages_that_cannot_be_split() -> None:
    with pytest.raises(InvalidInput, match="Paste a passage"):
        split_into_beats("   ")
    with pytest.raises(InvalidInput, match="at most"):
        split_into_beats("word " * (MAX_PASSAGE_CHARS // 5 + 1))


def test_a_beat_stored_before_pictures_were_listed_counts_its_picture_as_drawn() -> None:
    old = {"start": 0, "end": 5, "text": "Hello", "prompt": "hello", "picture_id": 7, "status": "drawn"}
    assert Beat.from_dict(old).drawn == (7,)
    again = Beat.from_dict(json.loads(json.dumps(Beat.from_dict(old).to_dict())))
    assert again.drawn == (7,) and again.picture_id == 7


def test_the_sheets_cast_gives_each_named_character_their_look_and_nothing_else() -> None:
    sheet = {
        "cast": [
            {
                "key": "girl",
                "name": "girl",
                "kind": "a young girl",
                "attributes": {
                    "girl": "a young girl",
                    "mara": "mara",
                    "hair": "long red hair",
                    "cloak": "a green cloak",
                    "stair": "climbing the stair",  # what she does in one picture: not her look
                },
            },
            {
                "key": "keeper",
                "name": "keeper",
                "kind": "lighthouse keeper",
                "attributes": {"keeper": "lighthouse keeper"},
            },
            {"key": "1", "name": "1", "kind": "beat 1", "attributes": {"1": "beat 1"}},
        ],
        "visible": ["girl"],
    }
    cast = cast_from_sheet(sheet)
    assert [(m.name, m.description) for m in cast] == [
        ("Mara", "a young girl, long red hair, a green cloak"),
        ("keeper", ""),
    ]
    beat = Beat(
        0, 30, "Mara walked into the tavern.", "Mara walks into a tavern, long red hair, storybook illustration"
    )
    assert with_looks(beat, cast) == (
        "Mara, a young girl, a green cloak, walks into a tavern, long red hair, storybook illustration"
    )  # the look comes right after the name, before what CLIP's 77 tokens might cut
    harbour = Beat(0, 30, "Mara ran to the harbour.", "the harbour at dawn, storybook illustration")
    assert with_looks(harbour, cast) == "Mara, a young girl, long red hair, a green cloak, the harbour at dawn, " + (
        "storybook illustration"
    )
    elsewhere = Beat(0, 30, "The keeper lit the lamp.", "the keeper lights the lamp")
    assert with_looks(elsewhere, cast) == "the keeper lights the lamp"  # Mara is not in it; the keeper has no look
