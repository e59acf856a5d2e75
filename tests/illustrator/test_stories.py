"""Story mode over the real turn service: the tiny offline image model, a real SQLite file, the built-in rules."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from illustrator.errors import GenerationFailed, InvalidInput
from illustrator.plan import ChatMessage, Plan, RefinerState
from illustrator.refiner import FallbackRefiner
from illustrator.refining.turn import SheetRefiner
from illustrator.stories import StoryService
from illustrator.story import continue_from_previous, edit_beat, split_into_beats
from tests.illustrator.test_service import library_for, make_service

POEM = """The lighthouse keeper climbs the stair
with lantern raised against the night;
the sea is black, the wind is bare,
and gulls wheel through the swinging light.

At dawn a boat comes round the bay,
its sail as red as winter fire;
a girl stands at the prow in grey
and sings above the breaking choir.

By noon the harbour fills with snow,
the keeper and the girl ashore;
they walk the market, row by row,
and no one sees the sea no more.
"""


class FlakyRefiner(FallbackRefiner):
    """The built-in rules, except that the turns whose message holds `fail_on` fail while `failing` is set."""

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.failing = True

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        if self.failing and self.fail_on in conversation[-1].content:
            raise GenerationFailed("The picture could not be drawn (a test failure).")
        return super().refine(conversation, state)


def _story(data_dir: Path, generator, refiner=None) -> tuple[StoryService, str]:
    turns, _ = make_service(data_dir, generator, refiner or FallbackRefiner())
    stories = StoryService(turns._db, turns, library_for(turns, data_dir))  # the same database and files
    view = stories.save(None, POEM, stories.propose(POEM).beats)
    return stories, view.session_id


def test_draw_all_stops_and_goes_on_without_losing_a_picture(data_dir: Path, offline_generator) -> None:
    stories, session_id = _story(data_dir, offline_generator)
    assert stories.load(session_id).passage == POEM  # type: ignore[union-attr]
    seen: list[str] = []
    stop = threading.Event()

    def progress(done: int, total: int, text: str) -> None:
        seen.append(text)
        if done == 1:
            stop.set()  # the writer presses Stop while beat 1 is drawn

    first = stories.draw_all(session_id, progress=progress, stop=stop)
    assert first.stopped and first.drawn == [0] and seen[0] == "Drawing beat 1 of 3…"
    kept = stories.load(session_id).beats[0].picture_id  # type: ignore[union-attr]
    assert kept is not None

    # beat 3 continues from beat 2's picture: an edit of it
    story = stories.load(session_id)
    assert story is not None
    stories.save(session_id, POEM, continue_from_previous(story.beats, 2))
    rest = stories.draw_all(session_id)
    assert rest.drawn == [1, 2] and not rest.failed and not rest.stopped
    beats = rest.story.beats
    assert beats[0].picture_id == kept  # nothing drawn before is redrawn or lost
    third = stories._library.get_picture(beats[2].picture_id)  # type: ignore[arg-type]
    assert third.action == "edit" and third.parent_id == beats[1].picture_id
    view = stories._library.open_session(session_id)
    assert [m.content for m in view.messages if m.role == "user"][0].startswith("Beat 1: The lighthouse keeper")
    assert len([m for m in view.messages if m.picture is not None]) == 3  # each beat an ordinary turn


def test_a_failed_beat_is_redrawn_alone(data_dir: Path, offline_generator) -> None:
    refiner = FlakyRefiner(fail_on="Beat 2:")
    stories, session_id = _story(data_dir, offline_generator, refiner)
    report = stories.draw_all(session_id)
    assert report.drawn == [0, 2] and list(report.failed) == [1] and "could not be drawn" in report.failed[1]
    assert [b.status for b in report.story.beats] == ["drawn", "failed", "drawn"]
    before = [b.picture_id for b in report.story.beats]

    refiner.failing = False
    again = stories.draw_all(session_id, only=[1])
    after = [b.picture_id for b in again.story.beats]
    assert again.drawn == [1] and after[0] == before[0] and after[2] == before[2] and after[1] is not None


def test_a_story_must_fit_its_passage(data_dir: Path, offline_generator) -> None:
    stories, session_id = _story(data_dir, offline_generator)
    beats = split_into_beats("A short passage. It has two sentences.")
    with pytest.raises(InvalidInput, match="does not fit"):
        stories.save(session_id, "short", beats)
    with pytest.raises(InvalidInput, match="no story"):
        stories.draw_all(stories._library.create_session("Empty").id)


def test_story_and_export_commands(data_dir: Path, offline_generator, tmp_path: Path) -> None:
    import json

    from ebooklib import ITEM_IMAGE, epub

    from tests.illustrator.test_cli import run_cli

    poem = tmp_path / "poem.txt"
    poem.write_text(POEM, encoding="utf-8")
    printed = run_cli("story", str(poem), "--cast", "keeper: an old man with a white beard", data_dir=data_dir)
    assert printed.returncode == 0, printed.stderr
    beats = json.loads(printed.stdout)["beats"]
    assert [POEM[b["start"] : b["end"]] for b in beats] == [b["text"] for b in beats] and len(beats) == 3
    assert "an old man with a white beard" in beats[0]["prompt"]

    stories, session_id = _story(data_dir, offline_generator)
    stories.draw_all(session_id)
    stories._turns._db.dispose()
    out = tmp_path / "exports"
    exported = run_cli("export", session_id[:8], "--format", "epub", "-o", str(out), data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    book = epub.read_epub(str(next(out.glob("*.epub"))))
    assert len(list(book.get_items_of_type(ITEM_IMAGE))) == 3
    missing = run_cli("export", "0" * 32, "--format", "pdf", data_dir=data_dir)
    assert missing.returncode == 1 and "No session has that id" in missing.stderr and "Traceback" not in missing.stderr


def test_the_writer_chooses_each_beats_picture_and_the_export_command_uses_it(
    data_dir: Path, offline_generator, tmp_path: Path
) -> None:
    from tests.illustrator.test_cli import run_cli

    stories, session_id = _story(data_dir, offline_generator)
    stories.draw_all(session_id)
    first = stories.load(session_id).beats[0].picture_id  # type: ignore[union-attr]
    redrawn = stories.draw_all(session_id, only=[0]).story.beats[0]
    assert redrawn.drawn == (first, redrawn.picture_id) and redrawn.picture_id != first  # the beat ended on the new one

    choices = stories.picture_choices(session_id, 0)
    assert [c.picture_id for c in choices[:2]] == [redrawn.picture_id, first]
    assert "the beat ended on it" in choices[0].label and "drawn earlier for this beat" in choices[1].label
    assert {c.picture_id for c in choices[2:]} == {b.picture_id for b in stories.load(session_id).beats[1:]}  # type: ignore[union-attr]
    # pictures are named by their number in the session; a favourite (starred) comes before the session's others
    last = stories.load(session_id).beats[-1].picture_id  # type: ignore[union-attr]
    stories._library.star(last)
    numbers = {p.id: p.number for p in stories._library.session_pictures(session_id)}
    choices = stories.picture_choices(session_id, 0)
    assert choices[2].picture_id == last and choices[2].label == f"★ #{numbers[last]}, a favourite"
    assert all(c.label.split(",")[0].lstrip("★ ") == f"#{numbers[c.picture_id]}" for c in choices)

    chosen = stories.choose_picture(session_id, 0, first)
    assert chosen.beats[0].picture_id == first and chosen.beats[0].drawn == redrawn.drawn  # nothing drawn is lost
    assert stories.load(session_id).beats[0].picture_id == first  # type: ignore[union-attr]
    elsewhere = stories._turns.send(None, "a red fox in the snow").picture.id
    with pytest.raises(InvalidInput, match="its own session"):
        stories.choose_picture(session_id, 0, elsewhere)

    stories._turns._db.dispose()
    out = tmp_path / "exports"
    exported = run_cli("export", session_id[:8], "--format", "html", "-o", str(out), data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    page = next(out.rglob("index.html")).read_text(encoding="utf-8")
    assert f"images/picture-{first}.png" in page and f"images/picture-{redrawn.picture_id}.png" not in page


MARA_CHAPTER = """Mara climbed the cliff path above the village at dawn.

That night Mara walked into the tavern by the harbour and sat by the fire.
"""


def test_the_chats_story_sheet_gives_every_beat_the_same_look(data_dir: Path, offline_generator) -> None:
    turns, _ = make_service(data_dir, offline_generator, SheetRefiner(None))
    stories = StoryService(turns._db, turns, library_for(turns, data_dir))
    chat = turns.send(None, "Mara, a young girl with long red hair and a green cloak, standing on a cliff")
    session_id = chat.picture.session_id
    cast = stories.cast_of(session_id)
    assert [(m.name, m.description) for m in cast] == [("Mara", "a young girl, long red hair, a green cloak")]

    proposal = stories.propose(MARA_CHAPTER, cast)
    assert len(proposal.beats) == 2
    assert all("long red hair" in beat.prompt and "green cloak" in beat.prompt for beat in proposal.beats)
    # a beat whose prompt the writer rewrote without her look still draws her as the sheet has her
    beats = edit_beat(proposal.beats, 1, "Mara by the fire in a harbour tavern at night")
    stories.save(session_id, MARA_CHAPTER, beats)
    report = stories.draw_all(session_id)
    assert report.drawn == [0, 1]
    drawn = [stories._library.get_picture(b.picture_id) for b in report.story.beats]  # type: ignore[arg-type]
    assert (
        "long red hair" in drawn[1].prompt
        and drawn[1].prompt.startswith("Mara, a young girl")
        and "by the fire" in drawn[1].prompt
    )


def test_a_character_described_in_an_earlier_beat_keeps_that_look(data_dir: Path, offline_generator) -> None:
    turns, _ = make_service(data_dir, offline_generator, SheetRefiner(None))
    stories = StoryService(turns._db, turns, library_for(turns, data_dir))
    passage = "Mara, a young girl with long red hair and a green cloak, stood on the cliff.\n\n" + MARA_CHAPTER
    view = stories.save(None, passage, stories.propose(passage).beats)
    assert "red hair" not in stories.load(view.session_id).beats[-1].prompt  # type: ignore[union-attr]
    report = stories.draw_all(view.session_id)
    last = stories._library.get_picture(report.story.beats[-1].picture_id)  # type: ignore[arg-type]
    assert "long red hair" in last.prompt
