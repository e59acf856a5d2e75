"""A chat turn as the API and the page run it: check, stream the live previews, show the result or say why not."""

from __future__ import annotations

import contextvars
import logging
import math
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import Any

import gradio as gr
from gradio.blocks import Block

from illustrator.errors import GenerationCancelled, IllustratorError, InvalidInput
from illustrator.inputs import parse_size
from illustrator.plan import Action
from illustrator.service import CheckedTurn, TurnOptions, TurnResult
from illustrator.wiring import Illustrator
from illustrator.writers import Writer
from ui.candidates import show_candidates
from ui.components import AUTOMATIC, Page, RefusedUpload, Updates
from ui.errors import UNEXPECTED, writer_errors
from ui.owners import writer_of
from ui.views import as_text, chat_messages, picture_caption, shown_file

logger = logging.getLogger(__name__)

WAITING = "*Drawing… type your next message meanwhile: it waits here, and Send comes back when this picture is done.*"
RESET = "The controls for the next turn are back to automatic (tick “Keep these controls” to keep them)."
STOPPED = "Stopped."
REDRAW = "Redraw this picture with the prompt as edited."


class Turn:
    """One chat turn, for the public API (a refused turn raises) and for the page (a refused turn is a toast)."""

    def __init__(self, app: Illustrator, page: Page, session_box: gr.Textbox) -> None:
        self.app, self.page, self.session_box = app, page, session_box

    def for_api(
        self,
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
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to ask for progress
    ) -> Iterator[Updates]:
        """The turn of the public `send` endpoint: a refused or failed turn is raised as the writer's message."""
        page = self.page
        shown: set[Block] = {page.chat.chat, page.picture.current, page.picture.details, page.session_id}
        shown |= {self.session_box, page.base_picture}
        controls = (action, strength, seed, steps, size, negative, prompt, start)
        try:
            for update in self._drive(text, sid, controls, base, progress, writer_of(self.app, request)):
                yield {k: v for k, v in update.items() if k in shown or k is page.base_picture} | {
                    page.chat.message: ""
                }
        except IllustratorError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:
            logger.error("A turn failed", exc_info=e)
            raise gr.Error(UNEXPECTED) from e

    def for_page(
        self,
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
        pin: bool = False,
        candidates: float = 1,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to ask for progress
    ) -> Iterator[Updates]:
        """The page's turn: Send off while drawing; a refusal is a toast; Stop says so; the overrides reset."""
        chat = self.page.chat
        busy: Updates = {chat.send: gr.Button(value="Drawing…", interactive=False), chat.waiting: WAITING}
        idle: Updates = {chat.send: gr.Button(value="Send", interactive=True), chat.waiting: ""}
        controls = (action, strength, seed, steps, size, negative, prompt, start)
        try:
            writer = writer_of(self.app, request)
            # The picture and Send come back in one update: a writer who clicks Send on seeing the picture is heard.
            finish = lambda: idle | self._reset(controls, pin)  # noqa: E731
            drive = self._drive(text, sid, controls, base, progress, writer, finish, int(candidates or 1))
            for update in drive:
                sid = update.get(self.page.session_id, sid)
                yield busy | update
        except GenerationCancelled:
            yield self._stopped(sid, base, writer) | idle
            return
        except IllustratorError as e:
            gr.Warning(str(e))
            yield idle
            return
        except Exception as e:
            logger.error("A turn failed", exc_info=e)
            gr.Warning(UNEXPECTED)
            yield idle

    def redraw_for_page(
        self,
        prompt: str,
        sid: str | None,
        base: int | None,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to ask for progress
    ) -> Iterator[Updates]:
        """Redraw the current picture's turn with the edited prompt, its seed, strength, steps and size."""
        shown = None
        if sid:
            with writer_errors():
                library, writer = self.app.library, writer_of(self.app, request)
                shown = (
                    library.get_picture(int(base), writer=writer)
                    if base
                    else library.open_session(sid, writer=writer).current_picture
                )
        if shown is None:
            gr.Warning("There is no picture to redraw yet.")
            yield {self.page.chat.send: gr.skip()}
            return
        action = shown.action if shown.parent_id else "new"  # an edit without its parent here cannot be redone
        size = f"{shown.width}x{shown.height}"
        yield from self.for_page(
            REDRAW, sid, action, shown.strength or 0, shown.seed, shown.steps, size, shown.negative_prompt, prompt,
            base=shown.parent_id, pin=True, request=request, progress=progress,
        )  # fmt: skip

    def _drive(
        self,
        text: str,
        sid: str | None,
        controls: tuple[Any, ...],
        base: int | None,
        progress: gr.Progress,
        writer: Writer,
        finish: Callable[[], Updates] = dict,
        candidates: int = 1,
    ) -> Iterator[Updates]:
        """Check the turn, show the message, stream the previews, then show the result; domain errors propagate."""
        app, page = self.app, self.page
        area, picture = page.chat, page.picture
        if isinstance(controls[-1], RefusedUpload):
            raise InvalidInput(controls[-1].reason)
        options = replace(turn_options(*controls), base_picture_id=int(base) if base else None, candidates=candidates)
        turn = app.service.check_turn(text, options)  # the one check; the starting picture decoded once
        sid = sid or app.library.create_session(writer=writer).id
        before = app.library.open_session(sid, writer=writer)
        messages = chat_messages(before) + [{"role": "user", "content": as_text(turn.text)}]
        hidden = show_candidates(page.candidates, ())  # the last turn's candidates are no longer the ones to choose
        yield {area.chat: messages, page.session_id: sid, self.session_box: sid, area.message: ""} | hidden
        result = yield from run_turn(app, sid, turn, picture.current, progress, writer)
        drawn = result.picture
        yield (
            {
                area.chat: chat_messages(app.library.open_session(sid, writer=writer)),
                picture.current: shown_file(app, drawn, writer),
                picture.details: picture_caption(drawn),
                picture.refined: drawn.prompt,
                page.session_id: sid,
                self.session_box: sid,
                page.base_picture: None,
            }
            | show_candidates(page.candidates, result.candidates)
            | finish()
        )

    def _stopped(self, sid: str | None, base: int | None, writer: Writer) -> Updates:
        """A cancelled turn: the chat says "Stopped." and the picture shown before the turn is back."""
        page = self.page
        if not sid:
            return {}
        view = self.app.library.open_session(sid, writer=writer)
        shown = self.app.library.get_picture(int(base), writer=writer) if base else view.current_picture
        return {
            page.chat.chat: chat_messages(view) + [{"role": "assistant", "content": STOPPED}],
            page.picture.current: shown_file(self.app, shown, writer),
            page.picture.details: picture_caption(shown) if shown else "",
            page.picture.refined: shown.prompt if shown else "",
            page.base_picture: base,
        }

    def _reset(self, controls: tuple[Any, ...], pin: bool) -> Updates:
        """The overrides are for one turn: back to automatic (and said so) unless the writer pinned them."""
        if pin or list(controls) == AUTOMATIC:
            return {}
        gr.Info(RESET)
        return dict(zip(self.page.picture.controls, AUTOMATIC, strict=True))


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


def run_turn(
    app: Illustrator, sid: str, turn: CheckedTurn, current: gr.Image, progress: gr.Progress, writer: Writer
) -> Generator[Updates, None, TurnResult]:
    """Run the turn on a worker thread and stream its live previews into the current picture; return the result."""
    updates: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = app.service.send(
                sid,
                turn,
                progress=lambda fraction, desc: progress(fraction, desc=desc),
                preview=updates.put,
                writer=writer,
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
    if error is not None:
        raise error  # presented by the caller: raised to an API caller, a toast on the page
    result: TurnResult = outcome["result"]
    return result
