"""The chat: send a turn and stream its live previews, stop it, and import a picture's settings as controls."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from illustrator.errors import IllustratorError
from illustrator.images import load_picture
from illustrator.library import read_imported_picture
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.sessions import follow_turn
from ui.turns import Turn

logger = logging.getLogger(__name__)


def wire_chat(app: Illustrator, page: Page) -> None:
    """Send (button or Enter) on the one GPU queue, Stop outside any queue, and importing a picture's settings."""
    area, picture = page.chat, page.picture
    # Shown on the API as the session id of a turn, so that scripts can reopen the session.
    session_box = gr.Textbox(visible=False, label="session id")
    turn = Turn(app, page, session_box)
    inputs = [area.message, page.session_id, *picture.controls, page.base_picture]
    outputs = [area.chat, picture.current, picture.details, page.session_id, session_box, area.message]

    # The public API's turn (scripts): a refused turn is raised to the caller.
    api_sent = gr.Button(visible=False).click(
        turn.for_api,
        inputs,
        [*outputs, page.base_picture],
        api_name="send",
        concurrency_limit=app.settings.turn_concurrency,  # 1, or one turn per Ray replica
        concurrency_id="gpu",
    )
    follow_turn(app, page, api_sent)
    # The page's turn: a refused turn is a toast, the controls reset unless pinned, Send is off while drawing.
    page_outputs = [*outputs, page.base_picture, area.send, area.waiting, picture.refined, *picture.controls]
    page_outputs += [page.candidates.gallery, page.candidates.ids]
    sent = area.send.click(
        turn.for_page,
        [*inputs, picture.pin, page.candidates.count],
        page_outputs,
        api_visibility="private",
        concurrency_limit=app.settings.turn_concurrency,  # 1, or one turn per Ray replica
        concurrency_id="gpu",
        show_progress_on=[picture.current],  # the message box and the controls stay usable while drawing
    )
    follow_turn(app, page, sent)
    redrawn = picture.redraw.click(
        turn.redraw_for_page,
        [picture.refined, page.session_id, page.base_picture],
        page_outputs,
        api_visibility="private",
        concurrency_limit=app.settings.turn_concurrency,  # 1, or one turn per Ray replica
        concurrency_id="gpu",
        show_progress_on=[picture.current],  # the message box and the controls stay usable while drawing
    )
    follow_turn(app, page, redrawn)
    # Enter presses Send, so a message typed while drawing stays in the box (Send is off) instead of being lost.
    area.message.submit(None, None, None, js="() => document.querySelector('#send-button')?.click()")
    _wire_stop(app, page)
    _wire_import(page)
    _wire_start_check(app, page)


STOPPING = "*Stopping… (after the current step, or as soon as the refiner has answered)*"


def _wire_stop(app: Illustrator, page: Page) -> None:
    waiting = page.chat.waiting

    def cancel(sid: str | None, request: gr.Request) -> Updates:
        # Said in the line under Send, not a toast: an event outside the queue has no stream to carry a toast.
        if sid and app.service.cancel(sid, writer=writer_of(app, request)):
            return {waiting: STOPPING}
        return {waiting: gr.skip()}

    # Stop skips the queue: a queue full of turns must never block it.
    page.chat.stop.click(cancel, [page.session_id], [waiting], api_name="cancel", queue=False)


def _wire_import(page: Page) -> None:
    picture = page.picture

    def import_for_api(file: Any) -> Updates:
        path = file if isinstance(file, str) else getattr(file, "name", None)
        if not path:
            raise gr.Error("Choose a PNG file to import.")
        with writer_errors():
            found = read_imported_picture(path)
        made = "made by Illustrator" if found.made_here else "from another tool"
        gr.Info(f"Restored the prompt and settings of this picture ({made}); it is the starting picture.")
        return {
            picture.prompt: found.prompt,
            picture.negative: found.negative_prompt,
            picture.seed: found.seed if found.seed is not None else -1,
            picture.steps: found.steps or 0,
            picture.size: f"{found.width}x{found.height}" if found.width and found.height else "auto",
            picture.start: path,
        }

    def import_for_page(file: Any) -> Updates:
        try:
            return import_for_api(file)
        except gr.Error as e:  # on the page a message, not an error over the controls
            gr.Warning(e.message)
            return {picture.start: gr.skip()}

    outputs = [picture.prompt, picture.negative, picture.seed, picture.steps, picture.size, picture.start]
    picture.import_picture.upload(import_for_page, [picture.import_picture], outputs, api_visibility="private")
    # The public endpoint raises, so that a script is told why an import was refused.
    gr.Button(visible=False).click(import_for_api, [picture.import_picture], outputs, api_name="import_picture")


def _wire_start_check(app: Illustrator, page: Page) -> None:
    """An uploaded starting picture is read at once: one that cannot be used is a toast and is taken out again."""
    start = page.picture.start

    def check_start(payload: Any) -> Updates:
        path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", None)  # raw: ImageData
        if not path:
            return {start: gr.skip()}
        settings = app.settings
        try:  # raw, not Gradio's preprocess: a file it cannot open must become a message, not an error over outputs
            load_picture(path, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels)
        except IllustratorError as e:
            gr.Warning(str(e))
            return {start: None}
        return {start: gr.skip()}

    # On the queue (not the GPU one): a toast travels on the queue's stream.
    start.upload(check_start, [start], [start], preprocess=False, api_visibility="private")
