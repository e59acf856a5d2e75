"""The chat: send a turn and stream its live previews, stop it, and import a picture's settings as controls."""

from __future__ import annotations

import contextvars
import logging
import math
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any

import gradio as gr

from illustrator.errors import IllustratorError
from illustrator.inputs import parse_size
from illustrator.library import read_imported_picture
from illustrator.plan import Action
from illustrator.service import CheckedTurn, TurnOptions, TurnResult
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import UNEXPECTED, writer_errors
from ui.sessions import follow_turn
from ui.views import chat_messages, picture_caption

logger = logging.getLogger(__name__)


def turn_options(
    action: str, strength: float, seed: float | None, steps: float, size: str, negative: str, prompt: str, start: Any
) -> TurnOptions:
    """Turn the control values into the writer's overrides for one turn (checked later, once, by the service)."""
    width, height = parse_size(size)
    return TurnOptions(
        action=None if action in (None, "", "auto") else Action(action),
        strength=float(strength) if strength else None,
        seed=int(seed) if seed is not None and math.isfinite(seed) and seed >= 0 else None,
        steps=int(steps) if steps else None,
        width=width,
        height=height,
        negative_prompt=negative.strip() if negative and negative.strip() else None,
        prompt=prompt.strip() if prompt and prompt.strip() else None,
        start_image=start,
    )


def wire_chat(app: Illustrator, page: Page) -> None:
    """Send (button or Enter) on the one GPU queue, Stop outside any queue, and importing a picture's settings."""
    area, picture = page.chat, page.picture
    # Shown on the API as the session id of a turn, so that scripts can reopen the session.
    session_box = gr.Textbox(visible=False, label="session id")

    def send_turn(
        text: str,
        sid: str | None,
        action: str = "auto",
        strength: float = 0,
        seed: float | None = -1,
        steps: float = 0,
        size: str = "auto",
        negative: str = "",
        prompt: str = "",
        start: Any = None,
        base: int | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to ask for progress
    ) -> Iterator[Updates]:
        with writer_errors():
            options = turn_options(action, strength, seed, steps, size, negative, prompt, start)
            options = replace(options, base_picture_id=int(base) if base else None)
            turn = app.service.check_turn(text, options)  # the one check; the starting picture decoded once
            sid = sid or app.library.create_session().id
            before = app.library.open_session(sid)
        chat = chat_messages(before) + [{"role": "user", "content": turn.text}]
        yield {area.chat: chat, page.session_id: sid, session_box: sid, area.message: ""}
        result = yield from _run_turn(app, sid, turn, picture.current, progress)
        view = app.library.open_session(sid)
        drawn = result.picture
        yield {
            area.chat: chat_messages(view),
            picture.current: str(drawn.path),
            picture.details: picture_caption(drawn),
            page.session_id: sid,
            session_box: sid,
            area.message: "",
            page.base_picture: None,
        }

    outputs = [area.chat, picture.current, picture.details, page.session_id, session_box, area.message]
    for trigger, visibility in ((area.send.click, "public"), (area.message.submit, "private")):
        sent = trigger(
            send_turn,
            [area.message, page.session_id, *picture.controls, page.base_picture],
            [*outputs, page.base_picture],
            api_name="send" if visibility == "public" else "send_on_enter",
            api_visibility=visibility,
            concurrency_limit=1,
            concurrency_id="gpu",
        )
        follow_turn(app, page, sent)
    _wire_stop(app, page)
    _wire_import(page)


def _wire_stop(app: Illustrator, page: Page) -> None:
    def cancel(sid: str | None) -> None:
        if sid and app.service.cancel(sid):
            gr.Info("Stopping after the current step…")

    # Stop skips the queue: a queue full of turns must never block it.
    page.chat.stop.click(cancel, [page.session_id], None, api_name="cancel", queue=False)


def _wire_import(page: Page) -> None:
    picture = page.picture

    def import_file(file: Any) -> Updates:
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

    outputs = [picture.prompt, picture.negative, picture.seed, picture.steps, picture.size, picture.start]
    picture.import_picture.upload(import_file, [picture.import_picture], outputs, api_name="import_picture")


def _run_turn(
    app: Illustrator, sid: str, turn: CheckedTurn, current: gr.Image, progress: gr.Progress
) -> Generator[Updates, None, TurnResult]:
    """Run the turn on a worker thread and stream its live previews into the current picture; return the result."""
    updates: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = app.service.send(
                sid, turn, progress=lambda fraction, desc: progress(fraction, desc=desc), preview=updates.put
            )
        except Exception as e:  # handed to the Gradio thread below, which turns it into a message
            outcome["error"] = e
        finally:
            updates.put(None)

    context = contextvars.copy_context()  # gr.Progress finds its event through context variables
    worker = threading.Thread(target=context.run, args=(work,), name="turn", daemon=True)
    worker.start()
    while (preview := updates.get()) is not None:
        yield {current: preview}
    worker.join()
    error = outcome.get("error")
    if isinstance(error, IllustratorError):
        raise gr.Error(str(error)) from error
    if error is not None:
        logger.error("A turn failed", exc_info=error)
        raise gr.Error(UNEXPECTED) from error
    result: TurnResult = outcome["result"]
    return result
