"""The Gradio UI of Illustrator: turns Gradio values into domain values and back, and domain errors into gr.Error.

Run it with `illustrator serve` (or `python app.py`); see README.md.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from illustrator.errors import IllustratorError
from illustrator.models import LoadState, ModelManager
from illustrator.plan import Action
from illustrator.service import MessageView, PictureView, SessionView, TurnOptions, TurnResult, TurnService
from illustrator.settings import Settings
from storage.db import create_db
from storage.files import PictureFiles

logger = logging.getLogger("illustrator.app")

ASSETS = Path(__file__).resolve().parent / "assets"
SIZES = ["auto", "256x256", "512x512", "512x768", "768x512", "768x768", "1024x1024"]
ACTIONS = [
    ("Let the refiner decide", "auto"),
    ("New picture", "new"),
    ("Edit this picture", "edit"),
    ("Variation", "variation"),
]
UNEXPECTED = "Something went wrong on our side; the details are in the server log. Your session is saved."


@dataclass
class Illustrator:
    """The running app's parts, wired together in one place."""

    settings: Settings
    service: TurnService
    models: ModelManager
    files: PictureFiles


def wire(settings: Settings) -> Illustrator:
    """Create the database, the picture store, the models (loading in the background) and the service."""
    db = create_db(settings.resolved_database_url)
    files = PictureFiles(settings.pictures_dir.resolve())
    models = ModelManager(settings)
    service = TurnService(settings, db, files, models)
    models.start()
    return Illustrator(settings, service, models, files)


# Domain values -> Gradio values ------------------------------------------------------------------


def picture_caption(picture: PictureView) -> str:
    """The details shown under a picture."""
    strength = f" · strength {picture.strength:.2f}" if picture.strength is not None else ""
    parent = f" · from picture #{picture.parent_id}" if picture.parent_id else ""
    return (
        f"**Picture #{picture.id}** · {picture.action}{strength} · seed {picture.seed} · "
        f"{picture.steps} step{'s' if picture.steps != 1 else ''} · "
        f"{picture.width}x{picture.height} · {picture.model}{parent}\n\n**Prompt:** {picture.prompt}"
        + (f"\n\n**Negative:** {picture.negative_prompt}" if picture.negative_prompt else "")
    )


def chat_messages(view: SessionView) -> list[dict[str, Any]]:
    """A session's conversation in the Chatbot's message format."""
    messages: list[dict[str, Any]] = []
    for message in view.messages:
        messages.extend(_chat_message(message))
    return messages


def _chat_message(message: MessageView) -> list[dict[str, Any]]:
    if message.role == "user":
        return [{"role": "user", "content": message.content}]
    picture = message.picture
    if picture is None:
        return [{"role": "assistant", "content": message.content}]
    refiner = (message.plan or {}).get("source", "")
    by = " (refined by the built-in rules)" if refiner == "fallback" else ""
    text = f"{message.content}\n\n*{picture.action}{by}* — **prompt:** {picture.prompt}"
    return [
        {"role": "assistant", "content": text},
        {"role": "assistant", "content": {"path": str(picture.path), "alt_text": picture.prompt}},
    ]


def session_choices(app: Illustrator, query: str | None = None) -> list[tuple[str, str]]:
    """The session list as (label, id) pairs, most recent first."""
    return [(f"{s.title} · {s.updated_at:%b %d, %H:%M}", s.id) for s in app.service.list_sessions(query)]


def status_markdown(app: Illustrator) -> str:
    """The model status line for the page header."""
    status = app.models.status()
    if status.state is LoadState.READY and status.placeholder:
        return f"⚠️ {status.summary}"
    return status.summary


# Gradio values -> domain values ------------------------------------------------------------------


def turn_options(
    action: str, strength: float, seed: float | None, steps: float, size: str, negative: str, prompt: str, start: Any
) -> TurnOptions:
    """Turn the control values into the writer's overrides for one turn."""
    width = height = None
    if size and size != "auto":
        try:
            width, height = (int(part) for part in size.lower().split("x"))
        except ValueError as e:
            raise gr.Error(f"Unknown picture size '{size}'.") from e
    return TurnOptions(
        action=None if action in (None, "", "auto") else Action(action),
        strength=float(strength) if strength else None,
        seed=int(seed) if seed is not None and seed >= 0 else None,
        steps=int(steps) if steps else None,
        width=width,
        height=height,
        negative_prompt=negative.strip() if negative and negative.strip() else None,
        prompt=prompt.strip() if prompt and prompt.strip() else None,
        start_image=start,
    )


# The page ----------------------------------------------------------------------------------------


def build_ui(app: Illustrator) -> gr.Blocks:
    """The Blocks page: sessions on the left, the chat in the middle, the current picture on the right."""
    with gr.Blocks(title="Illustrator") as demo:
        session_id = gr.State(None)
        with gr.Row(elem_id="header"):
            gr.Markdown("## Illustrator\nDescribe a character or a scene; ask for changes in plain words.")
            status = gr.Markdown(status_markdown(app), elem_id="model-status")
        status_timer = gr.Timer(1.0)
        with gr.Row():
            with gr.Column(scale=1, min_width=220):
                new_session = gr.Button("New session", elem_id="new-session", variant="secondary")
                sessions = gr.Radio(choices=[], label="Sessions", elem_id="session-list", interactive=True)
            with gr.Column(scale=3):
                chat = gr.Chatbot(elem_id="chat", height=560, label="Conversation", buttons=["copy"])
                with gr.Row():
                    message = gr.Textbox(
                        placeholder="A mermaid sitting near a waterfall under a starlit sky…",
                        show_label=False,
                        elem_id="chat-input",
                        scale=6,
                        max_length=app.settings.max_message_chars,
                        autofocus=True,
                    )
                    send = gr.Button("Send", variant="primary", elem_id="send-button", scale=1, min_width=80)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-button", scale=1, min_width=80)
            with gr.Column(scale=2):
                current = gr.Image(
                    label="Current picture",
                    elem_id="current-picture",
                    type="filepath",
                    format="png",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                )
                details = gr.Markdown(elem_id="picture-details")
                with gr.Accordion("Controls for the next turn", open=False):
                    action = gr.Radio(ACTIONS, value="auto", label="Action", elem_id="action")
                    strength = gr.Slider(0, 1, value=0, step=0.05, label="Edit strength (0 = let the refiner decide)")
                    seed = gr.Number(value=-1, precision=0, label="Seed (-1 = new random seed)", elem_id="seed")
                    steps = gr.Slider(0, 50, value=0, step=1, label="Steps (0 = the model's default)")
                    size = gr.Dropdown(SIZES, value="auto", label="Size")
                    negative = gr.Textbox("", label="Negative prompt (empty = the refiner's)", lines=2)
                    prompt = gr.Textbox("", label="Use this prompt instead of the refined one", lines=2)
                    start = gr.Image(label="Your own starting picture (optional)", type="pil", sources=["upload"])

        controls = [action, strength, seed, steps, size, negative, prompt, start]

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
            progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented way to ask for progress
        ) -> Iterator:
            options = turn_options(action, strength, seed, steps, size, negative, prompt, start)
            try:
                text = app.service.check_message(text)
                if not sid:
                    sid = app.service.create_session().id
                before = app.service.open_session(sid)
            except IllustratorError as e:
                raise gr.Error(str(e)) from e
            pending = chat_messages(before) + [{"role": "user", "content": text}]
            yield pending, gr.skip(), gr.skip(), sid, gr.skip(), ""
            result = yield from _run_turn(app, sid, text, options, progress)
            view = app.service.open_session(sid)
            choices = gr.Radio(choices=session_choices(app), value=sid)
            picture = result.picture
            yield chat_messages(view), str(picture.path), picture_caption(picture), sid, choices, ""

        outputs = [chat, current, details, session_id, sessions, message]
        for trigger, visibility in ((send.click, "public"), (message.submit, "private")):
            trigger(
                send_turn,
                [message, session_id, *controls],
                outputs,
                api_name="send" if visibility == "public" else "send_on_enter",
                api_visibility=visibility,
                concurrency_limit=1,
                concurrency_id="gpu",
            )

        def cancel(sid: str | None) -> None:
            if sid and app.service.cancel(sid):
                gr.Info("Stopping after the current step…")

        stop.click(cancel, [session_id], None, api_name="cancel", concurrency_limit=None)

        def open_session(sid: str | None) -> tuple:
            if not sid:
                return [], None, "", None
            try:
                view = app.service.open_session(sid)
            except IllustratorError as e:
                raise gr.Error(str(e)) from e
            picture = view.current_picture
            return (
                chat_messages(view),
                str(picture.path) if picture else None,
                picture_caption(picture) if picture else "",
                view.id,
            )

        sessions.input(
            open_session,
            [sessions],
            [chat, current, details, session_id],
            api_name="open_session_from_list",
            api_visibility="private",
        )
        # The same, by id, for scripts and links (the list above only accepts ids it is showing).
        session_to_open = gr.Textbox(visible=False, label="session id")
        open_by_id = gr.Button(visible=False)
        open_by_id.click(open_session, [session_to_open], [chat, current, details, session_id], api_name="open_session")

        def start_new_session() -> tuple:
            return [], None, "", None, gr.Radio(value=None), ""

        new_session.click(
            start_new_session, None, [chat, current, details, session_id, sessions, message], api_name="new_session"
        )

        def refresh_sessions(sid: str | None) -> Any:
            return gr.Radio(choices=session_choices(app), value=sid)

        demo.load(refresh_sessions, [session_id], [sessions], api_name="list_sessions")

        def refresh_status() -> tuple:
            ready = app.models.status().state is not LoadState.LOADING
            return status_markdown(app), gr.Timer(active=not ready)

        status_timer.tick(
            refresh_status, None, [status, status_timer], api_visibility="private", show_progress="hidden"
        )
    return demo


def _run_turn(
    app: Illustrator, sid: str, text: str, options: TurnOptions, progress: gr.Progress
) -> Generator[tuple, None, TurnResult]:
    """Run the turn on a worker thread and stream its live previews; return the TurnResult."""
    updates: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = app.service.send(
                sid,
                text,
                options,
                progress=lambda fraction, desc: progress(fraction, desc=desc),
                preview=updates.put,
            )
        except Exception as e:  # handed to the Gradio thread below, which turns it into a message
            outcome["error"] = e
        finally:
            updates.put(None)

    context = contextvars.copy_context()  # gr.Progress finds its event through context variables
    worker = threading.Thread(target=context.run, args=(work,), name="turn", daemon=True)
    worker.start()
    while (preview := updates.get()) is not None:
        yield gr.skip(), preview, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    worker.join()
    error = outcome.get("error")
    if isinstance(error, IllustratorError):
        raise gr.Error(str(error)) from error
    if error is not None:
        logger.error("A turn failed", exc_info=error)
        raise gr.Error(UNEXPECTED) from error
    result: TurnResult = outcome["result"]
    return result


def launch(app: Illustrator, *, prevent_thread_lock: bool = False, quiet: bool = False) -> gr.Blocks:
    """Build the page and serve it on the configured address."""
    demo = build_ui(app)
    demo.queue(max_size=32, default_concurrency_limit=4)
    demo.launch(
        server_name=app.settings.host,
        server_port=app.settings.port,
        prevent_thread_lock=prevent_thread_lock,
        allowed_paths=[str(app.settings.pictures_dir)],
        show_error=False,
        quiet=quiet,
        css_paths=[ASSETS / "style.css"],
        footer_links=["api"],
    )
    return demo


def main(settings: Settings) -> None:
    """Wire the app and serve it until interrupted."""
    app = wire(settings)
    launch(app)


if __name__ == "__main__":
    from illustrator.cli import main as cli_main

    cli_main(["serve"])
