"""The Gradio UI of Illustrator: turns Gradio values into domain values and back, and domain errors into gr.Error.

Run it with `illustrator serve` (or `python app.py`); see README.md.
"""

from __future__ import annotations

import contextvars
import logging
import math
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI
from gradio.routes import App as GradioApp
from starlette.routing import Mount

from illustrator.access import blocked_paths, login_for
from illustrator.errors import IllustratorError
from illustrator.images import unreadable_reason
from illustrator.library import PER_PAGE, Library, read_imported_picture
from illustrator.models import LoadState, ModelManager
from illustrator.plan import Action
from illustrator.service import MessageView, PictureView, SessionView, TurnOptions, TurnResult, TurnService
from illustrator.settings import Settings
from illustrator.web import WebServer, lan_address, share_routes
from storage.db import create_db
from storage.files import PictureFiles
from storage.recovery import recover
from storage.thumbnails import Thumbnails
from ui.guard import guard_inputs
from ui.hosts import HostGuard, allowed_hosts

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
    library: Library


def wire(settings: Settings, *, start_models: bool = True) -> Illustrator:
    """Create the database, the picture store, the models (loading in the background) and the service."""
    db = create_db(settings.resolved_database_url)
    files = PictureFiles(settings.pictures_dir.resolve())
    recover(db, files)  # after a crash: the database whole, every picture row with its file, no stray files
    models = ModelManager(settings)
    service = TurnService(settings, db, files, models)
    thumbnails = Thumbnails(settings.thumbnails_dir.resolve(), files)
    library = Library(service, db, files, thumbnails, exports=settings.exports_dir.resolve())
    if start_models:
        models.start()
    return Illustrator(settings, service, models, files, library)


@contextmanager
def writer_errors() -> Iterator[None]:
    """Turn the domain's errors (each a plain sentence) into the message Gradio shows the writer."""
    try:
        yield
    except IllustratorError as e:
        raise gr.Error(str(e)) from e


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
    if not picture.path.is_file():  # deleted or moved by hand while the app runs: say so rather than fail
        return [{"role": "assistant", "content": f"{message.content}\n\n*(picture #{picture.id} is missing on disk)*"}]
    refiner = (message.plan or {}).get("source", "")
    by = " (refined by the built-in rules)" if refiner == "fallback" else ""
    parent = f", from picture #{picture.parent_id}" if picture.parent_id else ""
    text = f"{message.content}\n\n*Picture #{picture.id} · {picture.action}{by}{parent}* — **prompt:** {picture.prompt}"
    return [
        {"role": "assistant", "content": text},
        {"role": "assistant", "content": {"path": str(picture.path), "alt_text": picture.prompt}},
    ]


def session_samples(app: Illustrator, query: str | None = None) -> tuple[list[list[Any]], list[str]]:
    """The session list as Dataset rows (thumbnail, title and date), most recent first, and the ids of its rows."""
    summaries = app.library.list_sessions(query)
    rows = [
        [str(s.thumbnail) if s.thumbnail else None, f"**{s.title}**  \n{s.updated_at:%b %d, %H:%M}"] for s in summaries
    ]
    return rows, [s.id for s in summaries]


def gallery_details(picture: PictureView) -> str:
    """The details of a picture chosen in the gallery."""
    return picture_caption(picture) + f"\n\n*Turn {picture.turn} · drawn {picture.created_at:%b %d, %Y %H:%M} UTC*"


def share_link(app: Illustrator, token: str, request: gr.Request | None) -> str:
    """The full address of a share link, as someone else would open it."""
    host = (request.headers.get("host") if request is not None else None) or f"127.0.0.1:{app.settings.port}"
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if app.settings.host == "0.0.0.0" and name in ("127.0.0.1", "localhost"):
        name = lan_address() or name  # the writer opened the app locally; a friend needs the network address
    scheme = request.headers.get("x-forwarded-proto", "http") if request is not None else "http"
    return f"{scheme}://{name}{':' + port if port else ''}/share/{token}"


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
        seed=int(seed) if seed is not None and math.isfinite(seed) and seed >= 0 else None,
        steps=int(steps) if steps else None,
        width=width,
        height=height,
        negative_prompt=negative.strip() if negative and negative.strip() else None,
        prompt=prompt.strip() if prompt and prompt.strip() else None,
        start_image=start,
    )


def start_picture_input(**kwargs: Any) -> gr.Image:
    """The starting-picture upload: hands the app the file's path, and a file Gradio cannot open a plain sentence."""
    image = gr.Image(type="filepath", image_mode=None, **kwargs)  # decoded by illustrator.images, within limits
    gradio_preprocess = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return gradio_preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:  # Gradio reads the header first: not a picture, or a decompression bomb
            logger.info("Refused an upload: %s", e)
            raise gr.Error(unreadable_reason(e)) from e

    # An instance attribute, not a gr.Image subclass: Gradio writes a .pyi stub next to every subclass's module.
    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


# The page ----------------------------------------------------------------------------------------


def build_ui(app: Illustrator) -> gr.Blocks:
    """The Blocks page: a Chat tab (sessions, conversation, current picture) and a Gallery tab."""
    with gr.Blocks(title="Illustrator") as demo:
        session_id = gr.State(None)
        session_ids = gr.JSON([], visible=False)  # the ids of the session list's rows, in order (also for the API)
        base_picture = gr.State(None)  # "continue from this picture": the base of the next turn (a branch)
        with gr.Row(elem_id="header"):
            gr.Markdown("## Illustrator\nDescribe a character or a scene; ask for changes in plain words.")
            status = gr.Markdown(status_markdown(app), elem_id="model-status")
        status_timer = gr.Timer(1.0)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Chat", id="chat-tab", elem_id="chat-tab"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        new_session = gr.Button("New session", elem_id="new-session", variant="secondary")
                        search = gr.Textbox(
                            placeholder="Search messages and prompts…",
                            show_label=False,
                            elem_id="session-search",
                            max_lines=1,
                        )
                        sessions = gr.Dataset(
                            components=["image", "markdown"],
                            samples=[],
                            headers=["", "Sessions"],
                            type="index",
                            layout="table",
                            samples_per_page=8,
                            elem_id="session-list",
                            show_label=False,
                        )
                        with gr.Accordion("This session", open=False, visible=False, elem_id="session-panel") as panel:
                            title = gr.Textbox(label="Title", elem_id="session-title", max_lines=1)
                            rename = gr.Button("Rename", size="sm", elem_id="rename-session")
                            with gr.Row():
                                share = gr.Button("Share read-only link", size="sm", elem_id="share-session")
                                unshare = gr.Button("Stop sharing", size="sm", elem_id="unshare-session", visible=False)
                            link = gr.Textbox(
                                label="Anyone with this link can see this session (and nothing else)",
                                elem_id="share-link",
                                visible=False,
                                buttons=["copy"],
                            )
                            export = gr.Button("Export as zip (storyboard + pictures)", size="sm", elem_id="export")
                            export_file = gr.File(label="Export", visible=False, elem_id="export-file")
                            delete = gr.Button("Delete session…", size="sm", variant="stop", elem_id="delete-session")
                            with gr.Group(visible=False, elem_id="delete-confirm") as confirm:
                                confirm_text = gr.Markdown()
                                with gr.Row():
                                    confirm_delete = gr.Button(
                                        "Delete", size="sm", variant="stop", elem_id="confirm-delete"
                                    )
                                    cancel_delete = gr.Button("Keep it", size="sm", elem_id="cancel-delete")
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
                            strength = gr.Slider(
                                0, 1, value=0, step=0.05, label="Edit strength (0 = let the refiner decide)"
                            )
                            seed = gr.Number(value=-1, precision=0, label="Seed (-1 = new random seed)", elem_id="seed")
                            steps = gr.Slider(0, 50, value=0, step=1, label="Steps (0 = the model's default)")
                            size = gr.Dropdown(SIZES, value="auto", label="Size", allow_custom_value=True)
                            negative = gr.Textbox("", label="Negative prompt (empty = the refiner's)", lines=2)
                            prompt = gr.Textbox("", label="Use this prompt instead of the refined one", lines=2)
                            start = start_picture_input(
                                label="Your own starting picture (optional)", sources=["upload"]
                            )
                            import_picture = gr.UploadButton(
                                "Import a picture made by Illustrator…",
                                file_types=[".png"],
                                size="sm",
                                elem_id="import-picture",
                            )
            with gr.Tab("Gallery", id="gallery-tab", elem_id="gallery-tab") as gallery_tab:
                gallery_page = gr.State(1)
                gallery_ids = gr.State([])
                chosen = gr.State(None)  # the picture chosen in the gallery
                with gr.Row():
                    with gr.Column(scale=3):
                        with gr.Row(equal_height=True):
                            scope = gr.Radio(
                                [("This session", "session"), ("All sessions", "all")],
                                value="session",
                                show_label=False,
                                elem_id="gallery-scope",
                                scale=3,
                            )
                            newer = gr.Button("‹ Previous", size="sm", scale=1, min_width=80, elem_id="gallery-prev")
                            page_label = gr.Markdown(elem_id="gallery-page")
                            older = gr.Button("Next ›", size="sm", scale=1, min_width=80, elem_id="gallery-next")
                        gallery = gr.Gallery(
                            elem_id="gallery",
                            columns=6,
                            height=640,
                            allow_preview=False,
                            fit_columns=False,
                            object_fit="cover",
                            show_label=False,
                            buttons=[],
                        )
                    with gr.Column(scale=2):
                        chosen_image = gr.Image(
                            label="Picture",
                            elem_id="gallery-picture",
                            type="filepath",
                            format="png",
                            interactive=False,
                            buttons=["fullscreen"],
                        )
                        chosen_details = gr.Markdown("Choose a picture to see its details.", elem_id="gallery-details")
                        with gr.Row():
                            download = gr.DownloadButton(
                                "Download PNG", visible=False, elem_id="download-picture", size="sm"
                            )
                            continue_from = gr.Button(
                                "Continue from this picture",
                                variant="primary",
                                visible=False,
                                elem_id="continue-from",
                                size="sm",
                            )

        controls = [action, strength, seed, steps, size, negative, prompt, start]
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
        ) -> Iterator:
            options = turn_options(action, strength, seed, steps, size, negative, prompt, start)
            options = replace(options, base_picture_id=int(base) if base else None)
            with writer_errors():
                text = app.service.check_turn(text, options)
                if not sid:
                    sid = app.service.create_session().id
                before = app.service.open_session(sid)
            pending = chat_messages(before) + [{"role": "user", "content": text}]
            yield pending, gr.skip(), gr.skip(), sid, sid, "", gr.skip()
            result = yield from _run_turn(app, sid, text, options, progress)
            view = app.service.open_session(sid)
            picture = result.picture
            yield chat_messages(view), str(picture.path), picture_caption(picture), sid, sid, "", None

        outputs = [chat, current, details, session_id, session_box, message, base_picture]
        panel_outputs = [panel, title, link, export_file, confirm, share, unshare]
        for trigger, visibility in ((send.click, "public"), (message.submit, "private")):
            trigger(
                send_turn,
                [message, session_id, *controls, base_picture],
                outputs,
                api_name="send" if visibility == "public" else "send_on_enter",
                api_visibility=visibility,
                concurrency_limit=1,
                concurrency_id="gpu",
            ).then(_refresh_sessions(app), [search], [sessions, session_ids], api_visibility="private").then(
                _session_panel(app), [session_id], panel_outputs, api_visibility="private"
            )

        def cancel(sid: str | None) -> None:
            if sid and app.service.cancel(sid):
                gr.Info("Stopping after the current step…")

        # Stop, and browsing sessions below, skip the queue: a queue full of turns must never block them.
        stop.click(cancel, [session_id], None, api_name="cancel", queue=False)

        def open_session(sid: str | None) -> tuple:
            if not sid:
                return [], None, "", None, None
            with writer_errors():
                view = app.service.open_session(sid)
            picture = view.current_picture
            return (
                chat_messages(view),
                str(picture.path) if picture and picture.path.is_file() else None,
                picture_caption(picture) if picture else "",
                view.id,
                None,
            )

        opened = [chat, current, details, session_id, base_picture]
        show_panel = _session_panel(app)

        def open_row(index: int | None, ids: list[str]) -> tuple:
            if index is None or not 0 <= index < len(ids):
                raise gr.Error("That session is no longer listed; search again.")
            return open_session(ids[index])

        sessions.click(open_row, [sessions, session_ids], opened, api_visibility="private", queue=False).then(
            show_panel, [session_id], panel_outputs, api_visibility="private"
        )
        # The same, by id, for scripts and links.
        session_to_open = gr.Textbox(visible=False, label="session id")
        open_by_id = gr.Button(visible=False)
        open_by_id.click(open_session, [session_to_open], opened, api_name="open_session", queue=False).then(
            show_panel, [session_id], panel_outputs, api_visibility="private"
        )

        def start_new_session() -> tuple:
            return [], None, "", None, None, ""

        new_session.click(
            start_new_session, None, [chat, current, details, session_id, base_picture, message], api_name="new_session"
        ).then(show_panel, [session_id], panel_outputs, api_visibility="private")

        refresh = _refresh_sessions(app)
        demo.load(refresh, [search], [sessions, session_ids], api_name="list_sessions", queue=False)
        search.change(
            refresh,
            [search],
            [sessions, session_ids],
            api_name="search_sessions",
            trigger_mode="always_last",
            queue=False,
        )

        def rename_session(sid: str | None, new_title: str) -> str:
            if not sid:
                raise gr.Error("Open a session first.")
            with writer_errors():
                app.service.rename_session(sid, new_title)
            return " ".join(new_title.split())

        renames = ((rename.click, "rename_session", "public"), (title.submit, "rename_session_on_enter", "private"))
        for trigger, name, visibility in renames:
            trigger(rename_session, [session_id, title], [title], api_name=name, api_visibility=visibility).then(
                refresh, [search], [sessions, session_ids], api_visibility="private"
            )

        def ask_delete(sid: str | None) -> tuple:
            if not sid:
                raise gr.Error("Open a session first.")
            view = app.service.open_session(sid)
            count = sum(1 for m in view.messages if m.picture is not None)
            text = (
                f"Delete **{view.title}** with its {len(view.messages)} messages and {count} "
                f"picture{'s' if count != 1 else ''}? This cannot be undone."
            )
            return gr.Group(visible=True), text

        delete.click(ask_delete, [session_id], [confirm, confirm_text], api_visibility="private")
        cancel_delete.click(lambda: gr.Group(visible=False), None, [confirm], api_visibility="private")

        def delete_session(sid: str | None) -> tuple:
            if not sid:
                raise gr.Error("Open a session first.")
            with writer_errors():
                app.library.delete_session(sid)
            gr.Info("Session deleted.")
            return [], None, "", None, None

        confirm_delete.click(delete_session, [session_id], opened, api_name="delete_session").then(
            show_panel, [session_id], panel_outputs, api_visibility="private"
        ).then(refresh, [search], [sessions, session_ids], api_visibility="private")

        def share_session(sid: str | None, request: gr.Request) -> Any:
            if not sid:
                raise gr.Error("Open a session first.")
            with writer_errors():
                token = app.library.share(sid)
            return gr.Textbox(value=share_link(app, token, request), visible=True)

        def shared_buttons(shared: bool) -> Callable[[], tuple]:
            return lambda: (gr.Button(visible=not shared), gr.Button(visible=shared))

        share.click(share_session, [session_id], [link], api_name="share_session").then(
            shared_buttons(True), None, [share, unshare], api_visibility="private"
        )

        def unshare_session(sid: str | None) -> Any:
            if not sid:
                raise gr.Error("Open a session first.")
            with writer_errors():
                app.library.unshare(sid)
            gr.Info("The link no longer works.")
            return gr.Textbox(value="", visible=False)

        unshare.click(unshare_session, [session_id], [link], api_name="unshare_session").then(
            shared_buttons(False), None, [share, unshare], api_visibility="private"
        )

        def export_zip(sid: str | None) -> Any:
            if not sid:
                raise gr.Error("Open a session first.")
            with writer_errors():
                path = app.library.export(sid)
            return gr.File(value=str(path), visible=True)

        export.click(export_zip, [session_id], [export_file], api_name="export_session")

        def import_file(file: Any) -> tuple:
            path = file if isinstance(file, str) else getattr(file, "name", None)
            if not path:
                raise gr.Error("Choose a PNG file to import.")
            with writer_errors():
                found = read_imported_picture(path)
            size_value = f"{found.width}x{found.height}" if found.width and found.height else "auto"
            made = "made by Illustrator" if found.made_here else "from another tool"
            gr.Info(f"Restored the prompt and settings of this picture ({made}); it is the starting picture.")
            return (
                found.prompt,
                found.negative_prompt,
                found.seed if found.seed is not None else -1,
                found.steps or 0,
                size_value,
                path,
            )

        import_picture.upload(
            import_file, [import_picture], [prompt, negative, seed, steps, size, start], api_name="import_picture"
        )

        _wire_gallery(
            app,
            scope=scope,
            page=gallery_page,
            ids=gallery_ids,
            gallery=gallery,
            page_label=page_label,
            newer=newer,
            older=older,
            tab=gallery_tab,
            session_id=session_id,
            chosen=chosen,
            chosen_image=chosen_image,
            chosen_details=chosen_details,
            download=download,
            continue_from=continue_from,
        )

        def continue_from_picture(picture_id: int | None) -> tuple:
            if not picture_id:
                raise gr.Error("Choose a picture in the gallery first.")
            with writer_errors():
                picture = app.service.get_picture(int(picture_id))
                view = app.service.open_session(picture.session_id)
            note = f"**Your next message continues from picture #{picture.id}** (a new branch).\n\n"
            return (
                chat_messages(view),
                str(picture.path),
                note + picture_caption(picture),
                view.id,
                picture.id,
                gr.Tabs(selected="chat-tab"),
            )

        continue_from.click(continue_from_picture, [chosen], [*opened, tabs], api_name="continue_from_picture").then(
            show_panel, [session_id], panel_outputs, api_visibility="private"
        ).then(refresh, [search], [sessions, session_ids], api_visibility="private")

        def refresh_status() -> tuple:
            ready = app.models.status().state is not LoadState.LOADING
            return status_markdown(app), gr.Timer(active=not ready)

        status_timer.tick(
            refresh_status, None, [status, status_timer], api_visibility="private", show_progress="hidden"
        )
    return demo


def _refresh_sessions(app: Illustrator) -> Callable[[str | None], tuple]:
    def refresh(query: str | None = None) -> tuple:
        with writer_errors():  # a search too long to run: one sentence
            rows, ids = session_samples(app, query)
        return gr.Dataset(samples=rows), ids

    return refresh


def _session_panel(app: Illustrator) -> Callable[[str | None, gr.Request], tuple]:
    def show(sid: str | None, request: gr.Request) -> tuple:
        hidden = gr.Group(visible=False)
        if not sid:
            no_link = gr.Textbox(value="", visible=False)
            return gr.Accordion(visible=False), "", no_link, gr.File(visible=False), hidden, gr.skip(), gr.skip()
        view = app.service.open_session(sid)
        token = app.library.share_token(sid)
        shared = gr.Textbox(value=share_link(app, token, request) if token else "", visible=token is not None)
        return (
            gr.Accordion(visible=True),
            view.title,
            shared,
            gr.File(value=None, visible=False),
            hidden,
            gr.Button(visible=token is None),
            gr.Button(visible=token is not None),
        )

    return show


def _wire_gallery(app: Illustrator, **c: Any) -> None:
    """The Gallery tab's events: pages of thumbnails, a picture's details, download, "continue from"."""

    def show_page(scope: str, page: int, sid: str | None) -> tuple:
        if scope == "session" and not sid:
            return (
                [],
                [],
                1,
                "Open a session, or choose *All sessions*.",
                gr.Button(interactive=False),
                gr.Button(interactive=False),
            )
        result = app.library.pictures(sid if scope == "session" else None, page=page, per_page=PER_PAGE)
        items = [(str(t), f"#{p.id}") for p, t in zip(result.pictures, result.thumbnails, strict=True) if t]
        ids = [p.id for p, t in zip(result.pictures, result.thumbnails, strict=True) if t]
        label = f"Page {result.page} of {result.pages} · {result.total} picture{'s' if result.total != 1 else ''}"
        return (
            items,
            ids,
            result.page,
            label,
            gr.Button(interactive=result.page > 1),
            gr.Button(interactive=result.page < result.pages),
        )

    page_outputs = [c["gallery"], c["ids"], c["page"], c["page_label"], c["newer"], c["older"]]
    inputs = [c["scope"], c["page"], c["session_id"]]
    c["tab"].select(show_page, inputs, page_outputs, api_visibility="private")
    c["scope"].change(
        lambda scope, sid: show_page(scope, 1, sid),
        [c["scope"], c["session_id"]],
        page_outputs,
        api_visibility="private",
    )
    c["newer"].click(lambda s, p, sid: show_page(s, p - 1, sid), inputs, page_outputs, api_visibility="private")
    c["older"].click(lambda s, p, sid: show_page(s, p + 1, sid), inputs, page_outputs, api_visibility="private")
    page_box = gr.Number(1, visible=False, precision=0, label="page")
    gr.Button(visible=False).click(
        lambda s, p, sid: show_page(s, int(p or 1), sid),
        [c["scope"], page_box, c["session_id"]],
        page_outputs,
        api_name="gallery_page",
    )

    def choose(ids: list[int], evt: gr.SelectData) -> tuple:
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids):
            raise gr.Error("That picture is no longer listed.")
        return show_picture(ids[index])

    def show_picture(picture_id: int | None) -> tuple:
        with writer_errors():
            picture = app.service.get_picture(int(picture_id or 0))
        return (
            picture.id,
            str(picture.path),
            gallery_details(picture),
            gr.DownloadButton(value=str(picture.path), visible=True),
            gr.Button(visible=True),
        )

    chosen_outputs = [c["chosen"], c["chosen_image"], c["chosen_details"], c["download"], c["continue_from"]]
    c["gallery"].select(choose, [c["ids"]], chosen_outputs, api_visibility="private")
    picture_box = gr.Number(visible=False, precision=0, label="picture id")
    gr.Button(visible=False).click(show_picture, [picture_box], chosen_outputs, api_name="show_picture")


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
        yield gr.skip(), preview, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()  # one per output of send_turn
    worker.join()
    error = outcome.get("error")
    if isinstance(error, IllustratorError):
        raise gr.Error(str(error)) from error
    if error is not None:
        logger.error("A turn failed", exc_info=error)
        raise gr.Error(UNEXPECTED) from error
    result: TurnResult = outcome["result"]
    return result


@dataclass
class Served:
    """The running app: its page, its server and the address to open; `close()` stops both."""

    demo: gr.Blocks
    server: WebServer

    @property
    def url(self) -> str:
        """The address to open on this machine."""
        return self.server.local_url

    def wait(self) -> None:
        """Serve until the server stops or the user presses Ctrl+C."""
        self.server.wait()

    def close(self) -> None:
        """Stop the queue and the server."""
        self.demo.close(verbose=False)
        self.server.close()


def build_web_app(app: Illustrator, demo: gr.Blocks) -> FastAPI:
    """Our own routes first (read-only share pages), then the Gradio page mounted at the root."""
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Share pages live outside Gradio, so that a login for the editing UI never covers them.
    web.include_router(share_routes(app.library))
    # The login (required with --listen) guards the Gradio page, its API and its file routes, not the routes above.
    auth = login_for(app.settings)
    gr.mount_gradio_app(
        web,
        demo,
        path="/",
        server_name=app.settings.host,
        server_port=app.settings.port,
        auth=auth,
        allowed_paths=[
            str(app.settings.pictures_dir.resolve()),
            str(app.settings.thumbnails_dir.resolve()),
            str(app.settings.exports_dir.resolve()),
        ],
        blocked_paths=blocked_paths(app.settings),  # never served, whatever is allowed: the database, the models
        max_file_size=app.settings.max_upload_bytes,  # refused while the upload streams in
        show_error=False,
        css_paths=[ASSETS / "style.css"],
        footer_links=["api"],
    )
    # As after demo.launch(): demo.close() then stops the mounted app's open streams (heartbeats) at once.
    demo.app = next(r.app for r in web.routes if isinstance(r, Mount) and isinstance(r.app, GradioApp))
    guard_inputs(demo)  # Gradio's own input-file check (mounting leaves it off), text as text, unknown events 404
    web.add_middleware(HostGuard, hosts=allowed_hosts(app.settings, lan_address()))  # Host, CORS, framing
    return web


def launch(app: Illustrator, *, prevent_thread_lock: bool = False, quiet: bool = False) -> Served:
    """Build the page and serve it on the configured address; with `prevent_thread_lock`, return at once."""
    demo = build_ui(app)
    # api_open=False: no direct POST skips the queue, so every turn waits its turn in one bounded queue
    demo.queue(max_size=app.settings.queue_size, default_concurrency_limit=4, api_open=False)
    server = WebServer(build_web_app(app, demo), app.settings.host, app.settings.port)
    server.start()
    served = Served(demo, server)
    if not quiet:
        logger.info("Illustrator is running on %s", served.url)
    if not prevent_thread_lock:
        try:
            served.wait()
        finally:
            served.close()
    return served


def main(settings: Settings) -> None:
    """Wire the app and serve it until interrupted; the models start loading once the page is served."""
    app = wire(settings, start_models=False)
    # Importing torch and diffusers on the loader thread would hold the GIL while the page is being built.
    served = launch(app, prevent_thread_lock=True)
    app.models.start()
    try:
        served.wait()
    finally:
        served.close()


if __name__ == "__main__":
    from illustrator.cli import main as cli_main

    cli_main(["serve"])
