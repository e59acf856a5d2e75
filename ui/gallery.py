"""The Gallery tab: pages of thumbnails, a picture's details, download, and "continue from this picture"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from illustrator.labels import picture_label
from illustrator.library import PER_PAGE
from illustrator.service import PictureView
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.sessions import follow_turn
from ui.views import chat_messages, gallery_details, picture_caption, shown_file


def wire_gallery(app: Illustrator, page: Page) -> None:
    """The Gallery tab's events."""
    area = page.gallery

    def show_page(scope: str, number: int, sid: str | None, starred: bool, request: gr.Request) -> Updates:
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
            everywhere = scope != "session"
            result = app.library.pictures(
                None if everywhere else sid, page=number, per_page=PER_PAGE, starred=bool(starred), writer=writer
            )
        rows = zip(result.pictures, result.thumbnails, result.titles, strict=True)
        shown = [(p, t, title) for p, t, title in rows if t]
        kind = "starred picture" if starred else "picture"
        label = f"Page {result.page} of {result.pages} · {result.total} {kind}{'s' if result.total != 1 else ''}"
        return {
            area.gallery: [(str(t), grid_caption(p, title if everywhere else None)) for p, t, title in shown],
            area.ids: [p.id for p, _, _ in shown],
            area.page: result.page,
            area.page_label: label + " · newest first",
            area.newer: gr.Button(interactive=result.page > 1),
            area.older: gr.Button(interactive=result.page < result.pages),
        }

    outputs = [area.gallery, area.ids, area.page, area.page_label, area.newer, area.older]
    inputs = [area.scope, area.page, page.session_id, area.starred_only]
    area.tab.select(show_page, inputs, outputs, api_visibility="private")

    def first_page(scope: str, sid: str | None, starred: bool, request: gr.Request) -> Updates:
        return show_page(scope, 1, sid, starred, request)

    def newer_page(scope: str, number: int, sid: str | None, starred: bool, request: gr.Request) -> Updates:
        return show_page(scope, number - 1, sid, starred, request)

    def older_page(scope: str, number: int, sid: str | None, starred: bool, request: gr.Request) -> Updates:
        return show_page(scope, number + 1, sid, starred, request)

    def page_by_number(scope: str, number: float | None, sid: str | None, request: gr.Request) -> Updates:
        return show_page(scope, int(number or 1), sid, False, request)

    for control in (area.scope, area.starred_only):
        control.change(first_page, [area.scope, page.session_id, area.starred_only], outputs, api_visibility="private")
    area.newer.click(newer_page, inputs, outputs, api_visibility="private")
    area.older.click(older_page, inputs, outputs, api_visibility="private")
    page_box = gr.Number(1, visible=False, precision=0, label="page")
    gr.Button(visible=False).click(
        page_by_number, [area.scope, page_box, page.session_id], outputs, api_name="gallery_page"
    )
    _wire_chosen(app, page)
    _wire_star(app, page, first_page, outputs)


def grid_caption(picture: PictureView, session_title: str | None = None) -> str:
    """A thumbnail's caption: "#3", a star when starred, and the session's title in "All sessions"."""
    star = "★ " if picture.starred else ""
    return f"{star}{picture_label(picture)}" + (f" · {session_title}" if session_title else "")


def _wire_star(app: Illustrator, page: Page, first_page: Callable[..., Updates], grid: list[Any]) -> None:
    """The chosen picture's star: a favourite, shown in the grid and kept by a "starred only" export."""
    area = page.gallery

    def toggle_star(picture_id: int | None, request: gr.Request) -> Updates:
        if not picture_id:
            raise gr.Error("Choose a picture in the gallery first.")
        with writer_errors():
            writer = writer_of(app, request)
            picture = app.library.get_picture(int(picture_id), writer=writer)
            picture = app.library.star(picture.id, not picture.starred, writer=writer)
            title = app.library.session_title(picture.session_id, writer=writer)
        return {area.star: star_button(picture), area.chosen_details: gallery_details(picture, title)}

    starred = area.star.click(
        toggle_star, [area.chosen], [area.star, area.chosen_details], api_name="star_picture", queue=False
    )
    starred.then(first_page, [area.scope, page.session_id, area.starred_only], grid, api_visibility="private")


def star_button(picture: PictureView) -> gr.Button:
    """The star button as the picture stands: "☆ Star", or "★ Starred" to take the star away."""
    return gr.Button("★ Starred (click to unstar)" if picture.starred else "☆ Star", visible=True)


def _wire_chosen(app: Illustrator, page: Page) -> None:
    """Choosing a picture (in the grid, or by id for scripts), and continuing the story from it."""
    area = page.gallery

    def show_picture(picture_id: int | None, request: gr.Request) -> Updates:
        with writer_errors():
            writer = writer_of(app, request)
            picture = app.library.get_picture(int(picture_id or 0), writer=writer)
            title = app.library.session_title(picture.session_id, writer=writer)
            download = app.library.download(picture.id, writer=writer)  # named like crow-city-03.png
        return {
            area.chosen: picture.id,
            area.chosen_image: str(picture.path),
            area.chosen_details: gallery_details(picture, title),
            area.download: gr.DownloadButton(value=str(download), visible=True),
            area.continue_from: gr.Button(visible=True),
            area.star: star_button(picture),
        }

    def choose(ids: list[int], evt: gr.SelectData, request: gr.Request) -> Updates:
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids):
            raise gr.Error("That picture is no longer listed.")
        return show_picture(ids[index], request)

    outputs = [area.chosen, area.chosen_image, area.chosen_details, area.download, area.continue_from, area.star]
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
        note = f"**Your next message continues from picture {picture_label(picture)}** (a new branch).\n\n"
        return {
            page.chat.chat: chat_messages(view),
            page.picture.current: shown_file(app, picture, writer),
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
