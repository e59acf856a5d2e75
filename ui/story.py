"""The Story tab: paste a passage, review its beats, draw them all (with Stop), redraw one, export the manuscript."""

from __future__ import annotations

import contextvars
import html
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from illustrator.credits import credit_line
from illustrator.errors import IllustratorError, InvalidInput
from illustrator.labels import picture_label
from illustrator.stories import DrawReport, StoryView
from illustrator.story import (
    MAX_PASSAGE_CHARS,
    Beat,
    continue_from_previous,
    drop_beat,
    edit_beat,
    merge_beats,
    move_beat,
    split_beat,
)
from illustrator.wiring import Illustrator
from illustrator.writers import Writer
from ui.components import Page, Updates
from ui.errors import UNEXPECTED, writer_errors
from ui.owners import writer_of
from ui.sessions import follow_turn, open_session

logger = logging.getLogger(__name__)

EXPORT_FORMATS = [("EPUB", "epub"), ("PDF", "pdf"), ("Zip (HTML, EPUB and PDF)", "zip")]
BEAT_COLUMNS = ["#", "Text", "Prompt", "Continues", "Picture"]
NO_PICTURE = "No picture (text only)"


@dataclass
class StoryArea:
    """The Story tab's components."""

    passage: gr.Textbox
    propose: gr.Button
    beats: gr.HTML
    number: gr.Number
    prompt: gr.Textbox
    save_prompt: gr.Button
    up: gr.Button
    down: gr.Button
    drop: gr.Button
    merge: gr.Button
    split_words: gr.Textbox
    split: gr.Button
    continues: gr.Button
    draw: gr.Button
    stop: gr.Button
    redraw: gr.Button
    beat_picture: gr.Dropdown
    beat_pictures: gr.Gallery
    status: gr.Markdown
    pictures: gr.Gallery
    export_format: gr.Radio
    export: gr.Button
    export_file: gr.File


def build_story_tab() -> StoryArea:
    """Lay out the Story tab (inside a `gr.Tab`)."""
    with gr.Row():
        with gr.Column(scale=2):
            passage = gr.Textbox(
                label="Your passage: a poem, a chapter or a scene",
                lines=12,
                max_length=MAX_PASSAGE_CHARS,
                elem_id="story-passage",
            )
            propose = gr.Button("Split into beats", variant="primary", elem_id="story-propose")
            status = gr.Markdown(elem_id="story-status")
            with gr.Row():
                draw = gr.Button("Draw all", variant="primary", elem_id="story-draw")
                stop = gr.Button("Stop", variant="stop", elem_id="story-stop")
            pictures = gr.Gallery(label="Beats drawn", columns=4, height=300, elem_id="story-pictures")
            with gr.Row():
                export_format = gr.Radio(EXPORT_FORMATS, value="epub", label="Manuscript", elem_id="story-format")
                export = gr.Button("Export manuscript", elem_id="story-export")
            export_file = gr.File(label="Manuscript", visible=False, elem_id="story-export-file")
        with gr.Column(scale=3):
            beats = gr.HTML(beats_html([]), elem_id="story-beats")
            with gr.Group():
                number = gr.Number(1, precision=0, minimum=1, label="Beat", elem_id="story-beat-number")
                prompt = gr.Textbox(label="Its prompt", lines=2, elem_id="story-beat-prompt")
                with gr.Row():
                    save_prompt = gr.Button("Save prompt", size="sm", elem_id="story-save-prompt")
                    up = gr.Button("Move up", size="sm", elem_id="story-up")
                    down = gr.Button("Move down", size="sm", elem_id="story-down")
                    drop = gr.Button("Drop", size="sm", elem_id="story-drop")
                    merge = gr.Button("Merge with next", size="sm", elem_id="story-merge")
                with gr.Row():
                    split_words = gr.Textbox(
                        placeholder="Words that start the second half…", show_label=False, elem_id="story-split-at"
                    )
                    split = gr.Button("Split", size="sm", elem_id="story-split")
                    continues = gr.Button("Continue from previous (on/off)", size="sm", elem_id="story-continue")
                    redraw = gr.Button("Redraw this beat", size="sm", elem_id="story-redraw")
            with gr.Group():
                beat_picture = gr.Dropdown(
                    [], label="Its picture in the manuscript", interactive=True, elem_id="story-beat-picture"
                )
                beat_pictures = gr.Gallery(
                    label="Drawn for this beat", columns=4, height=180, elem_id="story-beat-pictures"
                )
    return StoryArea(
        passage, propose, beats, number, prompt, save_prompt, up, down, drop, merge, split_words, split, continues,
        draw, stop, redraw, beat_picture, beat_pictures, status, pictures, export_format, export, export_file,
    )  # fmt: skip


def beats_html(beats: list[Beat], labels: dict[int, str] | None = None) -> str:
    """The beats as an escaped table: number, text, prompt, continues, picture (named by `labels`, by id: "#3")."""
    if not beats:
        return '<p class="story-empty">Paste a passage and split it into beats.</p>'
    e = html.escape
    rows = []
    for i, beat in enumerate(beats, start=1):
        text = " ".join(beat.text.split())
        excerpt = text if len(text) <= 90 else text[:89] + "…"
        label = (labels or {}).get(beat.picture_id, "") if beat.picture_id else ""
        picture = label if beat.picture_id else ("failed" if beat.status == "failed" else "")
        if beat.picture_id and len(beat.drawn) > 1:
            picture += f" ({len(beat.drawn)} drawn)"
        cells = [str(i), excerpt, beat.prompt, "yes" if beat.continue_previous else "", picture]
        rows.append(f'<tr data-beat="{i}">' + "".join(f"<td>{e(cell)}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{e(name)}</th>" for name in BEAT_COLUMNS)
    return f'<table class="story-beats"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def wire_story(app: Illustrator, page: Page, area: StoryArea) -> None:
    """The Story tab's events: propose, edit the list, draw all (GPU queue) with Stop, redraw one, export."""
    stops: dict[str, threading.Event] = {}

    def shown(story: StoryView | None, writer: Writer, note: str = "") -> Updates:
        beats = story.beats if story else []
        pictures, labels = [], {}
        for i, beat in enumerate(beats, start=1):
            if beat.picture_id is not None:
                with writer_errors():
                    picture = app.library.get_picture(beat.picture_id, writer=writer)
                pictures.append((str(picture.path), f"Beat {i} · {credit_line(picture.artists)}"))
                labels[picture.id] = picture_label(picture)
        return {area.beats: beats_html(beats, labels), area.pictures: pictures, area.status: note}

    def beat_shown(story: StoryView | None, index: int, writer: Writer) -> Updates:
        """The pictures the beat may show in the manuscript (the chosen one selected) and those drawn for it."""
        if story is None or not 0 <= index < len(story.beats):
            return {area.beat_picture: gr.Dropdown(choices=[], value=None), area.beat_pictures: []}
        with writer_errors():
            choices = app.stories.picture_choices(story.session_id, index, writer=writer)
            mine = story.beats[index].drawn
            drawn = [app.library.get_picture(c.picture_id, writer=writer) for c in choices if c.picture_id in mine]
        options = [(NO_PICTURE, 0), *((choice.label, choice.picture_id) for choice in choices)]
        chosen = story.beats[index].picture_id or 0
        gallery = [(str(p.path), f"#{p.id} · {credit_line(p.artists)}") for p in drawn]
        return {area.beat_picture: gr.Dropdown(choices=options, value=chosen), area.beat_pictures: gallery}

    def propose(passage: str, sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            writer = writer_of(app, request)
            # the session's story sheet: a character established in the chat looks the same in every beat
            proposal = app.stories.propose(passage, app.stories.cast_of(sid, writer=writer))
            story = app.stories.save(sid, passage, proposal.beats, writer=writer)
        note = f"{len(story.beats)} beats ({'the LLM' if proposal.source == 'llm' else 'the built-in rules'})."
        first = story.beats[0].prompt if story.beats else ""
        updates = shown(story, writer, note) | beat_shown(story, 0, writer)
        return updates | {page.session_id: story.session_id, area.number: 1, area.prompt: first}

    beat_outputs = [area.beat_picture, area.beat_pictures]
    outputs = [area.beats, area.pictures, area.status, page.session_id, area.number, area.prompt, *beat_outputs]
    proposed = area.propose.click(
        propose,
        [area.passage, page.session_id],
        outputs,
        api_name="story_propose",
        concurrency_limit=app.settings.turn_concurrency,  # one queue with the turns: the same limit
        concurrency_id="gpu",  # the refiner's LLM may read the passage
    )
    follow_turn(app, page, proposed)

    def change(operation: Callable[[StoryView, int, str], list[Beat]]) -> Callable[..., Updates]:
        def handler(sid: str | None, number: float | None, text: str, request: gr.Request) -> Updates:
            with writer_errors():
                writer = writer_of(app, request)
                story = _story_of(app, sid, writer)
                index = int(number or 1) - 1
                beats = operation(story, index, text or "")
                saved = app.stories.save(story.session_id, story.passage, beats, writer=writer)
            index = max(0, min(index, len(saved.beats) - 1))
            chosen = saved.beats[index].prompt if saved.beats else ""
            return (
                shown(saved, writer) | beat_shown(saved, index, writer) | {area.number: index + 1, area.prompt: chosen}
            )

        return handler

    operations: dict[gr.Button, tuple[str, Callable[[StoryView, int, str], list[Beat]]]] = {
        area.save_prompt: ("story_edit", lambda s, i, t: edit_beat(s.beats, i, t)),
        area.up: ("story_up", lambda s, i, t: move_beat(s.beats, i, i - 1)),
        area.down: ("story_down", lambda s, i, t: move_beat(s.beats, i, i + 1)),
        area.drop: ("story_drop", lambda s, i, t: drop_beat(s.beats, i)),
        area.merge: ("story_merge", lambda s, i, t: merge_beats(s.passage, s.beats, i)),
        area.split: ("story_split", lambda s, i, t: split_beat(s.passage, s.beats, i, _offset_of(s, i, t))),
        area.continues: (
            "story_continue",
            lambda s, i, t: continue_from_previous(s.beats, i, not s.beats[i].continue_previous),
        ),
    }
    edit_outputs = [area.beats, area.pictures, area.status, area.number, area.prompt, *beat_outputs]
    for button, (name, operation) in operations.items():
        text_input = area.split_words if button is area.split else area.prompt
        button.click(change(operation), [page.session_id, area.number, text_input], edit_outputs, api_name=name)

    def choose(sid: str | None, number: float | None, request: gr.Request) -> Updates:
        with writer_errors():
            writer = writer_of(app, request)
            story = app.stories.load(sid, writer=writer) if sid else None
        index = int(number or 1) - 1
        if story is None or not 0 <= index < len(story.beats):
            return {area.prompt: ""} | beat_shown(None, index, writer)
        return {area.prompt: story.beats[index].prompt} | beat_shown(story, index, writer)

    area.number.change(choose, [page.session_id, area.number], [area.prompt, *beat_outputs], api_visibility="private")

    def pick(sid: str | None, number: float | None, picture_id: float | None, request: gr.Request) -> Updates:
        with writer_errors():
            writer = writer_of(app, request)
            story = _story_of(app, sid, writer)
            index = int(number or 1) - 1
            chosen = int(picture_id) if picture_id else None
            saved = app.stories.choose_picture(story.session_id, index, chosen, writer=writer)
        note = (
            f"Beat {index + 1} shows picture #{chosen} in the manuscript."
            if chosen
            else f"Beat {index + 1} shows no picture."
        )
        return shown(saved, writer, note) | beat_shown(saved, index, writer)

    area.beat_picture.input(
        pick,
        [page.session_id, area.number, area.beat_picture],
        [area.beats, area.pictures, area.status, *beat_outputs],
        api_name="story_choose_picture",
    )

    def draw(sid: str | None, number: float | None, only_one: bool, request: gr.Request | None) -> Iterator[Updates]:
        with writer_errors():
            writer = writer_of(app, request)
            story = _story_of(app, sid, writer)
        stop = stops[story.session_id] = threading.Event()
        only = [int(number or 1) - 1] if only_one else None
        try:
            report = None
            for update in _run_draw(app, story.session_id, stop, only, writer):
                if isinstance(update, DrawReport):
                    report = update
                else:
                    yield {area.status: update}
        finally:
            stops.pop(story.session_id, None)
        assert report is not None
        yield shown(report.story, writer, _summary(report)) | beat_shown(report.story, int(number or 1) - 1, writer)

    def draw_all(sid: str | None, number: float | None, request: gr.Request) -> Iterator[Updates]:
        yield from draw(sid, number, False, request)

    def redraw_one(sid: str | None, number: float | None, request: gr.Request) -> Iterator[Updates]:
        yield from draw(sid, number, True, request)

    def reopen(sid: str | None, request: gr.Request) -> Updates:
        return open_session(app, page, sid, request)

    draw_outputs = [area.beats, area.pictures, area.status, *beat_outputs]
    for button, handler, name in ((area.draw, draw_all, "story_draw"), (area.redraw, redraw_one, "story_redraw")):
        drawn = button.click(
            handler,
            [page.session_id, area.number],
            draw_outputs,
            api_name=name,
            concurrency_limit=app.settings.turn_concurrency,  # the turns' queue: the same limit
            concurrency_id="gpu",
        )
        follow_turn(app, page, drawn)
        drawn.then(reopen, [page.session_id], page.opened, api_visibility="private")

    def stop_drawing(sid: str | None, request: gr.Request) -> None:
        if sid and sid in stops:
            app.stories.stop(sid, stops[sid], writer=writer_of(app, request))
            gr.Info("Stopping: the beat being drawn is cancelled and no further beat starts.")

    area.stop.click(stop_drawing, [page.session_id], None, api_name="story_stop", queue=False)

    def export(sid: str | None, fmt: str, request: gr.Request) -> Updates:
        if not sid:
            raise gr.Error("Open or start a session first.")
        with writer_errors():
            folder = app.settings.exports_dir / "manuscripts" / sid
            path = app.stories.export(sid, fmt, folder, writer=writer_of(app, request))
        return {area.export_file: gr.File(value=str(path), visible=True)}

    area.export.click(export, [page.session_id, area.export_format], [area.export_file], api_name="story_export")

    def opened(sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            writer = writer_of(app, request)
            story = app.stories.load(sid, writer=writer) if sid else None
        updates = {key: value for key, value in shown(story, writer).items() if key is not area.status}  # keep the note
        updates |= beat_shown(story, 0, writer) | {
            area.number: 1,
            area.prompt: story.beats[0].prompt if story and story.beats else "",
        }
        return updates | {area.passage: story.passage if story else "", area.export_file: gr.File(visible=False)}

    page.session_id.change(
        opened,
        [page.session_id],
        [area.beats, area.pictures, area.passage, area.export_file, area.number, area.prompt, *beat_outputs],
        api_visibility="private",
    )


def _story_of(app: Illustrator, sid: str | None, writer: Writer) -> StoryView:
    story = app.stories.load(sid, writer=writer) if sid else None
    if story is None:
        raise InvalidInput("Paste a passage and split it into beats first.")
    return story


def _offset_of(story: StoryView, index: int, words: str) -> int:
    """Where in the passage the second half of a split beat starts: the first place its words appear in the beat."""
    beat = story.beats[index] if 0 <= index < len(story.beats) else None
    found = story.passage.find(words.strip(), beat.start + 1, beat.end) if beat and words.strip() else -1
    if found < 0:
        raise InvalidInput("Type the words (from this beat's text) where the second half should start.")
    return found


def _summary(report: DrawReport) -> str:
    parts = [f"Drew {len(report.drawn)} beat{'s' if len(report.drawn) != 1 else ''}."]
    if report.failed:
        failed = ", ".join(str(i + 1) for i in report.failed)
        parts.append(f"Beat {failed} failed ({next(iter(report.failed.values()))}); redraw it alone.")
    if report.stopped:
        parts.append("Stopped; Draw all goes on from the first beat without a picture.")
    return " ".join(parts)


def _run_draw(
    app: Illustrator, sid: str, stop: threading.Event, only: list[int] | None, writer: Writer
) -> Iterator[str | DrawReport]:
    """Draw on a worker thread; yield each progress line ("Drawing beat 3 of 9…"), then the report."""
    updates: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["report"] = app.stories.draw_all(
                sid, progress=lambda done, total, text: updates.put(text), stop=stop, only=only, writer=writer
            )
        except Exception as e:  # handed to the Gradio thread below, which turns it into a message
            outcome["error"] = e
        finally:
            updates.put(None)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="story", daemon=True)
    worker.start()
    while (line := updates.get()) is not None:
        yield line
    worker.join()
    error = outcome.get("error")
    if isinstance(error, IllustratorError):
        raise gr.Error(str(error)) from error
    if error is not None:
        logger.error("Drawing the story failed", exc_info=error)
        raise gr.Error(UNEXPECTED) from error
    yield outcome["report"]
