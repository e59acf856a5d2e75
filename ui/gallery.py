"""The Gallery tab: pages of thumbnails, a picture's details, download, and "continue from this picture"."""

from __future__ import annotations

import gradio as gr

from illustrator.library import PER_PAGE
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.sessions import follow_turn
from ui.views import chat_messages, gallery_details, picture_caption


def wire_gallery(app: Illustrator, page: Page) -> None:
    """The Gallery tab's events."""
    area = page.gallery

    def show_page(scope: str, number: int, sid: str | None, request: gr.Request) -> Updates:
        if scope == "session" and not sid:
            return {
                area.gallery: [],
                area.ids: [],
                area.page: 1,
                area.page_label: "Open a session, or choose *All sessions*.",
                area.newer: gr.Button(interactive=False),
                area.older: gr.Button(interactive=False),
            }
        with writer_errors():  # "All sessions" means all of this writer's sessions
            writer = writer_of(app, request)
            result = app.library.pictures(
                sid if scope == "session" else None, page=number, per_page=PER_PAGE, writer=writer
            )
        shown = [(p, t) for p, t in zip(result.pictures, result.thumbnails, strict=True) if t]
        label = f"Page {result.page} of {result.pages} · {result.total} picture{'s' if result.total != 1 else ''}"
        return {
            area.gallery: [(str(t), f"#{p.id}") for p, t in shown],
            area.ids: [p.id for p, _ in shown],
            area.page: result.page,
            area.page_label: label,
            area.newer: gr.Button(interactive=result.page > 1),
            area.older: gr.Button(interactive=result.page < result.pages),
        }

    outputs = [area.gallery, area.ids, area.page, area.page_label, area.newer, area.older]
    inputs = [area.scope, area.page, page.session_id]
    area.tab.select(show_page, inputs, outputs, api_visibility="private")

    def first_page(scope: str, sid: str | None, request: gr.Request) -> Updates:
        return show_page(scope, 1, sid, request)

    def newer_page(scope: str, number: int, sid: str | None, request: gr.Request) -> Updates:
        return show_page(scope, number - 1, sid, request)

    def older_page(scope: str, number: int, sid: str | None, request: gr.Request) -> Updates:
        return show_page(scope, number + 1, sid, request)

    def page_by_number(scope: str, number: float | None, sid: str | None, request: gr.Request) -> Updates:
        return show_page(scope, int(number or 1), sid, request)

    area.scope.change(first_page, [area.scope, page.session_id], outputs, api_visibility="private")
    area.newer.click(newer_page, inputs, outputs, api_visibility="private")
    area.older.click(older_page, inputs, outputs, api_visibility="private")
    page_box = gr.Number(1, visible=False, precision=0, label="page")
    gr.Button(visible=False).click(
        page_by_number, [area.scope, page_box, page.session_id], outputs, api_name="gallery_page"
    )
    _wire_chosen(app, page)


def _wire_chosen(app: Illustrator, page: Page) -> None:
    """Choosing a picture (in the grid, or by id for scripts), and continuing the story from it."""
    area = page.gallery

    def show_picture(picture_id: int | None, request: gr.Request) -> Updates:
        with writer_errors():
            picture = app.library.get_picture(int(picture_id or 0), writer=writer_of(app, request))
        return {
            area.chosen: picture.id,
            area.chosen_image: str(picture.path),
            area.chosen_details: gallery_details(picture),
            area.download: gr.DownloadButton(value=str(picture.path), visible=True),
            area.continue_from: gr.Button(visible=True),
        }

    def choose(ids: list[int], evt: gr.SelectData, request: gr.Request) -> Updates:
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids):
            raise gr.Error("That picture is no longer listed.")
        return show_picture(ids[index], request)

    outputs = [area.chosen, area.chosen_image, area.chosen_details, area.download, area.continue_from]
    area.gallery.select(choose, [area.ids], outputs, api_visibility="private")
    picture_box = gr.Number(visible=False, precision=0, label="picture id")
    gr.Button(visible=False).click(show_picture, [picture_box], outputs, api_name="show_picture")

    def continue_from_picture(picture_id: int | None, request: gr.Request) -> Updates:
        if not picture_id:
            raise gr.Error("Choose a picture in the gallery first.")
        with writer_errors():
            writer = writer_of(app, request)
            picture = app.library.get_picture(int(picture_id), writer=writer)
            view = app.library.open_session(picture.session_id, writer=writer)
        note = f"**Your next message continues from picture #{picture.id}** (a new branch).\n\n"
        return {
            page.chat.chat: chat_messages(view),
            page.picture.current: str(picture.path),
            page.picture.details: note + picture_caption(picture),
            page.picture.refined: picture.prompt,
            page.session_id: view.id,
            page.base_picture: picture.id,
            page.tabs: gr.Tabs(selected="chat-tab"),
        }

    continued = area.continue_from.click(
        continue_from_picture, [area.chosen], [*page.opened, page.tabs], api_name="continue_from_picture"
    )
    follow_turn(app, page, continued)
