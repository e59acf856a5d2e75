"""Story mode over the turn service: a session's passage and beats, drawn in order as ordinary turns."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from illustrator.errors import GenerationCancelled, IllustratorError, InvalidInput, NotFound
from illustrator.labels import picture_label
from illustrator.library import Library
from illustrator.plan import Action
from illustrator.service import TurnOptions, TurnService
from illustrator.story import (
    Beat,
    BeatProposal,
    CastMember,
    Complete,
    beats_from_json,
    beats_to_json,
    propose_beats,
)
from illustrator.story_cast import cast_from_sheet, with_looks
from illustrator.writers import LOCAL_WRITER, Writer
from storage.db import Database
from storage.stories import StoryRepository

logger = logging.getLogger(__name__)

# (beats done, beats to draw, what is happening: "Drawing beat 3 of 9…")
StoryProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class StoryView:
    """A session's story: the passage and its beats (each with its chosen picture, if drawn)."""

    session_id: str
    passage: str
    beats: list[Beat]


@dataclass(frozen=True)
class PictureChoice:
    """A picture the writer may choose for a beat, and why it is offered."""

    picture_id: int
    label: str


@dataclass(frozen=True)
class DrawReport:
    """What one Draw all (or one redraw) did: the story after it, and which beats were drawn, failed or left."""

    story: StoryView
    drawn: list[int]
    failed: dict[int, str]
    stopped: bool


class StoryService:
    """Proposes beats, keeps the story of a session, draws its beats through the turn service, exports it."""

    def __init__(
        self,
        db: Database,
        turns: TurnService,
        library: Library,
        complete: Complete | None = None,
        *,
        find_llm: Callable[[], Complete | None] | None = None,
    ) -> None:
        self._db = db
        self._turns = turns
        self._library = library  # the front door for sessions and their pictures
        self._complete = complete  # an LLM's text completion; else the rules split passages
        self._find_llm = find_llm  # or the app's LLM, looked up when asked (models load in the background)

    def propose(self, passage: str, cast: Sequence[CastMember] = ()) -> BeatProposal:
        """The beats of a passage (not stored yet): the LLM's when there is one and they fit, else the rules'."""
        complete = self._complete or (self._find_llm() if self._find_llm is not None else None)
        return propose_beats(passage, cast, complete)

    def cast_of(self, session_id: str | None, *, writer: Writer = LOCAL_WRITER) -> list[CastMember]:
        """The cast of the session's story sheet (the picture it ended on): the looks every beat keeps."""
        if not session_id:
            return []
        picture = self._library.open_session(session_id, writer=writer).current_picture
        return cast_from_sheet(picture.sheet) if picture is not None else []

    def picture_choices(self, session_id: str, index: int, *, writer: Writer = LOCAL_WRITER) -> list[PictureChoice]:
        """The pictures a beat may show: those drawn for it (the last one first), then the session's starred pictures
        (favourites), then its others; each named by its number in the session ("#3")."""
        story = self._require(session_id, writer)
        if not 0 <= index < len(story.beats):
            raise InvalidInput(f"There is no beat {index + 1}; the story has {len(story.beats)}.")
        drawn = story.beats[index].drawn
        view = self._library.open_session(session_id, writer=writer)
        pictures = {m.picture.id: m.picture for m in view.messages if m.picture is not None}

        def named(picture_id: int, why: str) -> PictureChoice:
            picture = pictures[picture_id]
            star = "★ " if picture.starred else ""
            return PictureChoice(picture_id, f"{star}{picture_label(picture)}, {why}")

        choices = [
            named(picture_id, "the beat ended on it" if number == 0 else "drawn earlier for this beat")
            for number, picture_id in enumerate(reversed(drawn))
            if picture_id in pictures
        ]
        others = [p for p in reversed(pictures) if p not in drawn]
        choices += [named(p, "a favourite") for p in others if pictures[p].starred]
        choices += [named(p, "from the session") for p in others if not pictures[p].starred]
        return choices

    def save(
        self,
        session_id: str | None,
        passage: str,
        beats: Sequence[Beat],
        title: str = "",
        *,
        writer: Writer = LOCAL_WRITER,
    ) -> StoryView:
        """Store the story of a session (a new session when `session_id` is None); the beats must fit the passage."""
        for beat in beats:
            if not 0 <= beat.start < beat.end <= len(passage) or not beat.prompt.strip():
                raise InvalidInput("A beat does not fit the passage; propose the beats again.")
        if session_id is None:
            first_line = next((line.strip() for line in passage.splitlines() if line.strip()), "Story")
            session_id = self._library.create_session(title or first_line[:60], writer=writer).id
        elif not self._library.owns_session(session_id, writer):
            raise NotFound("That session does not exist.")
        with self._db.transaction() as db:
            StoryRepository(db).save_story(session_id, passage, beats_to_json(beats))
        return StoryView(session_id, passage, list(beats))

    def load(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> StoryView | None:
        """The story of a session of the writer's, or None when it has none."""
        if not self._library.owns_session(session_id, writer):
            raise NotFound("That session does not exist.")
        with self._db.session() as db:
            story = StoryRepository(db).get_story(session_id)
            if story is None:
                return None
            return StoryView(session_id, story.passage, beats_from_json(story.beats_json))

    def choose_picture(
        self, session_id: str, index: int, picture_id: int | None, *, writer: Writer = LOCAL_WRITER
    ) -> StoryView:
        """Choose which picture of the session goes with a beat (None: no picture)."""
        story = self._require(session_id, writer)
        if picture_id is not None and self._library.get_picture(picture_id, writer=writer).session_id != session_id:
            raise InvalidInput("A beat can only show a picture of its own session.")
        beats = [replace(b, picture_id=picture_id) if i == index else b for i, b in enumerate(story.beats)]
        return self.save(session_id, story.passage, beats, writer=writer)

    def draw_all(
        self,
        session_id: str,
        *,
        progress: StoryProgress | None = None,
        stop: threading.Event | None = None,
        only: Sequence[int] | None = None,
        redraw: bool = False,
        writer: Writer = LOCAL_WRITER,
    ) -> DrawReport:
        """Draw the beats in order, each an ordinary turn; `only` draws just those beats, e.g. one that failed.

        Beats drawn already are skipped unless `redraw`; each picture is stored as soon as it is drawn, so a
        stop or a failure loses nothing drawn before it. A beat marked "continue from previous" is an edit of
        the previous beat's picture.
        """
        # 1. which beats to draw
        story = self._require(session_id, writer)
        beats = list(story.beats)
        wanted = [i for i in (range(len(beats)) if only is None else only) if 0 <= i < len(beats)]
        if only is not None and len(wanted) != len(only):
            raise InvalidInput(f"The story has {len(beats)} beats.")
        todo = [i for i in wanted if redraw or only is not None or beats[i].picture_id is None]
        report = progress or (lambda done, total, text: None)
        stop = stop or threading.Event()
        drawn: list[int] = []
        failed: dict[int, str] = {}

        # 2. each beat in order, saved as it is drawn
        for done, index in enumerate(todo):
            report(done, len(todo), f"Drawing beat {index + 1} of {len(beats)}…")
            if stop.is_set():
                break
            try:
                beats[index] = self._draw_beat(session_id, beats, index, writer)
                drawn.append(index)
            except GenerationCancelled as e:
                failed[index] = str(e)
                beats[index] = replace(beats[index], status="failed")
                stop.set()
            except IllustratorError as e:  # the beat fails alone; the next ones still get their turn
                logger.warning("Beat %d of session %s failed: %s", index + 1, session_id, e)
                failed[index] = str(e)
                beats[index] = replace(beats[index], status="failed")
            self.save(session_id, story.passage, beats, writer=writer)

        # 3. what happened
        stopped = stop.is_set()
        report(len(drawn), len(todo), "Stopped." if stopped else f"Drew {len(drawn)} of {len(todo)} beats.")
        return DrawReport(StoryView(session_id, story.passage, beats), drawn, failed, stopped)

    def export(
        self, session_id: str, fmt: str, folder: Path, *, starred: bool = False, writer: Writer = LOCAL_WRITER
    ) -> Path:
        """Write the session's illustrated manuscript (its story, or else its turns) in `fmt` into `folder`;
        `starred`: with only the starred pictures."""
        from illustrator.export import only_starred
        from illustrator.manuscript import build_manuscript, export_manuscript

        view = self._library.open_session(session_id, writer=writer)
        view = only_starred(view) if starred else view
        story = self.load(session_id, writer=writer)
        manuscript = build_manuscript(view, story.passage, story.beats) if story else build_manuscript(view)
        return export_manuscript(manuscript, folder, fmt)

    def stop(self, session_id: str, stop: threading.Event, *, writer: Writer = LOCAL_WRITER) -> None:
        """Stop a Draw all: the picture being drawn is cancelled, and no further beat starts."""
        stop.set()
        self._turns.cancel(session_id, writer=writer)

    def _draw_beat(self, session_id: str, beats: list[Beat], index: int, writer: Writer) -> Beat:
        beat = beats[index]
        previous = beats[index - 1].picture_id if index > 0 else None
        continuing = beat.continue_previous and previous is not None
        # a character established in the chat or an earlier beat keeps their look: the sheet's cast, as it is now
        options = TurnOptions(
            action=Action.EDIT if continuing else Action.NEW,
            prompt=with_looks(beat, self.cast_of(session_id, writer=writer)),
            base_picture_id=previous if continuing else None,
        )
        words = beat.prompt if len(beat.prompt) <= 150 else beat.prompt[:149].rsplit(" ", 1)[0] + "…"
        message = f"Beat {index + 1}: {words}"
        result = self._turns.send(session_id, message, options, writer=writer)
        return replace(beat, picture_id=result.picture.id, status="drawn", drawn=(*beat.drawn, result.picture.id))

    def _require(self, session_id: str, writer: Writer) -> StoryView:
        story = self.load(session_id, writer=writer)
        if story is None:
            raise InvalidInput("This session has no story yet: paste a passage and propose its beats first.")
        return story
