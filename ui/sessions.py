"""The session list and the open session's panel: list, search, open, new, rename, delete, share, export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.events import Dependency

from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.views import chat_messages, picture_caption, session_samples, share_link, shown_file


def follow_turn(app: Illustrator, page: Page, dependency: Dependency) -> None:
    """After an event that may change the open session: refresh the session list, then the session's panel."""
    area = page.sessions
    shown = dependency.then(
        _refresh(app, page), [area.search], [area.sessions, page.session_ids], api_visibility="private"
    ).then(_panel(app, page), [page.session_id], _panel_outputs(page), api_visibility="private")
    _show_address(page, shown)


# Each session has its own address: a reload or a bookmark reopens it.
ADDRESS_JS = """(sid) => {
  const url = new URL(window.location.href);
  if (sid) { url.searchParams.set("session", sid); } else { url.searchParams.delete("session"); }
  window.history.replaceState(null, "", url);
}"""


def _show_address(page: Page, dependency: Dependency) -> None:
    dependency.then(
        lambda sid: sid or "", [page.session_id], [page.sessions.address], api_visibility="private", queue=False
    )


def open_session(app: Illustrator, page: Page, sid: str | None, request: gr.Request | None = None) -> Updates:
    """The chat, the current picture and its details of a session of the request's writer (all empty without one)."""
    if not sid:
        empty: Updates = {
            page.chat.chat: [],
            page.picture.current: None,
            page.picture.details: "",
            page.picture.refined: "",
        }
        return empty | {page.session_id: None, page.base_picture: None}
    with writer_errors():
        writer = writer_of(app, request)
        view = app.library.open_session(sid, writer=writer)
    picture = view.current_picture
    return {
        page.chat.chat: chat_messages(view),
        page.picture.current: shown_file(app, picture, writer),
        page.picture.details: picture_caption(picture) if picture else "",
        page.picture.refined: picture.prompt if picture else "",
        page.session_id: view.id,
        page.base_picture: None,
    }


def wire_sessions(app: Illustrator, page: Page, demo: gr.Blocks) -> None:
    """The session list's events: load, search, open (a row, or by id), new session; then the panel's."""
    area = page.sessions
    refresh = _refresh(app, page)
    show_panel = _panel(app, page)
    panel_outputs = _panel_outputs(page)

    def open_row(index: int | None, ids: list[str], request: gr.Request) -> Updates:
        if index is None or not 0 <= index < len(ids):
            raise gr.Error("That session is no longer listed; search again.")
        return open_session(app, page, ids[index], request)

    # Browsing sessions skips the queue: a queue full of turns must never block it.
    opened = area.sessions.click(
        open_row, [area.sessions, page.session_ids], page.opened, api_visibility="private", queue=False
    ).then(show_panel, [page.session_id], panel_outputs, api_visibility="private")
    _show_address(page, opened)
    # The same, by id, for scripts and links.
    session_to_open = gr.Textbox(visible=False, label="session id")
    open_by_id = gr.Button(visible=False)
    api_opened = [o for o in page.opened if o is not page.picture.refined]  # the API's outputs stay as they were

    def open_for_api(sid: str | None, request: gr.Request) -> Updates:
        return {k: v for k, v in open_session(app, page, sid, request).items() if k in api_opened}

    by_id = open_by_id.click(open_for_api, [session_to_open], api_opened, api_name="open_session", queue=False)
    by_id.then(show_panel, [page.session_id], panel_outputs, api_visibility="private")

    def start_new_session() -> Updates:
        return open_session(app, page, None) | {page.chat.message: ""}

    started = area.new_session.click(
        start_new_session, None, [*page.opened, page.chat.message], api_name="new_session"
    ).then(show_panel, [page.session_id], panel_outputs, api_visibility="private")
    _show_address(page, started)
    area.address.change(None, [area.address], None, js=ADDRESS_JS)

    def open_from_address(request: gr.Request) -> Updates:
        sid = request.query_params.get("session") if request is not None else None
        if not sid:
            return {page.session_id: gr.skip()}
        try:
            return open_session(app, page, sid, request)  # as the request's writer (with logins too)
        except gr.Error:
            gr.Warning("The session in this address no longer exists.")
            return {page.session_id: gr.skip()}

    reopened = demo.load(open_from_address, None, page.opened, api_visibility="private")  # queued: its toast
    reopened.then(show_panel, [page.session_id], panel_outputs, api_visibility="private")
    demo.load(refresh, [area.search], [area.sessions, page.session_ids], api_name="list_sessions", queue=False)
    area.search.change(
        refresh,
        [area.search],
        [area.sessions, page.session_ids],
        api_name="search_sessions",
        trigger_mode="always_last",
        queue=False,
    )
    _wire_panel(app, page)


def _wire_panel(app: Illustrator, page: Page) -> None:
    """The open session's panel: rename, delete (asked first), share and stop sharing, export."""
    area = page.sessions
    refresh = _refresh(app, page)
    list_outputs = [area.sessions, page.session_ids]

    def rename_session(sid: str | None, new_title: str, request: gr.Request) -> Updates:
        with writer_errors():
            app.library.rename_session(_open(sid), new_title, writer=writer_of(app, request))
        return {area.title: " ".join(new_title.split())}

    renames = (
        (area.rename.click, "rename_session", "public"),
        (area.title.submit, "rename_session_on_enter", "private"),
    )
    for trigger, name, visibility in renames:
        renamed = trigger(
            rename_session, [page.session_id, area.title], [area.title], api_name=name, api_visibility=visibility
        )
        renamed.then(refresh, [area.search], list_outputs, api_visibility="private")

    def ask_delete(sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            view = app.library.open_session(_open(sid), writer=writer_of(app, request))
        count = sum(1 for m in view.messages if m.picture is not None)
        text = (
            f"Delete **{view.title}** with its {len(view.messages)} messages and {count} "
            f"picture{'s' if count != 1 else ''}? This cannot be undone."
        )
        return {area.confirm: gr.Group(visible=True), area.confirm_text: text}

    area.delete.click(ask_delete, [page.session_id], [area.confirm, area.confirm_text], api_visibility="private")
    area.cancel_delete.click(lambda: gr.Group(visible=False), None, [area.confirm], api_visibility="private")

    def delete_session(sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            app.library.delete_session(_open(sid), writer=writer_of(app, request))
        gr.Info("Session deleted.")
        return open_session(app, page, None)

    deleted = area.confirm_delete.click(delete_session, [page.session_id], page.opened, api_name="delete_session")
    follow_turn(app, page, deleted)
    _wire_sharing(app, page)

    def export_zip(sid: str | None, starred: bool | None = False, request: gr.Request | None = None) -> Updates:
        with writer_errors():
            path = app.library.export(_open(sid), starred=bool(starred), writer=writer_of(app, request))
        return {area.export_file: gr.File(value=str(path), visible=True)}

    area.export.click(export_zip, [page.session_id, area.export_starred], [area.export_file], api_name="export_session")


def _wire_sharing(app: Illustrator, page: Page) -> None:
    area = page.sessions

    def share_session(sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            token = app.library.share(_open(sid), writer=writer_of(app, request))
        return {area.link: gr.Textbox(value=share_link(app, token, request), visible=True)}

    def unshare_session(sid: str | None, request: gr.Request) -> Updates:
        with writer_errors():
            app.library.unshare(_open(sid), writer=writer_of(app, request))
        gr.Info("The link no longer works.")
        return {area.link: gr.Textbox(value="", visible=False)}

    def shared_buttons(shared: bool) -> Callable[[], Updates]:
        return lambda: {area.share: gr.Button(visible=not shared), area.unshare: gr.Button(visible=shared)}

    area.share.click(share_session, [page.session_id], [area.link], api_name="share_session").then(
        shared_buttons(True), None, [area.share, area.unshare], api_visibility="private"
    )
    area.unshare.click(unshare_session, [page.session_id], [area.link], api_name="unshare_session").then(
        shared_buttons(False), None, [area.share, area.unshare], api_visibility="private"
    )


def _open(sid: str | None) -> str:
    if not sid:
        raise gr.Error("Open a session first.")
    return sid


def _refresh(app: Illustrator, page: Page) -> Callable[[str | None, gr.Request | None], Updates]:
    def refresh(query: str | None = None, request: gr.Request | None = None) -> Updates:
        with writer_errors():  # a search too long to run: one sentence
            rows, ids = session_samples(app, query, writer=writer_of(app, request))
        return {page.sessions.sessions: gr.Dataset(samples=rows), page.session_ids: ids}

    return refresh


def _panel_outputs(page: Page) -> list[Any]:
    area = page.sessions
    return [area.panel, area.title, area.link, area.export_file, area.confirm, area.share, area.unshare]


def _panel(app: Illustrator, page: Page) -> Callable[[str | None, gr.Request], Updates]:
    area = page.sessions

    def show(sid: str | None, request: gr.Request) -> Updates:
        hidden = gr.Group(visible=False)
        if not sid:
            no_link = gr.Textbox(value="", visible=False)
            closed: Updates = {area.panel: gr.Accordion(visible=False), area.title: "", area.link: no_link}
            return closed | {area.export_file: gr.File(visible=False), area.confirm: hidden}
        with writer_errors():
            writer = writer_of(app, request)
            view = app.library.open_session(sid, writer=writer)
            token = app.library.share_token(sid, writer=writer)
        return {
            area.panel: gr.Accordion(visible=True),
            area.title: view.title,
            area.link: gr.Textbox(value=share_link(app, token, request) if token else "", visible=token is not None),
            area.export_file: gr.File(value=None, visible=False),
            area.confirm: hidden,
            area.share: gr.Button(visible=token is None),
            area.unshare: gr.Button(visible=token is not None),
        }

    return show
