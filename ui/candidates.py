"""Several candidates per turn: how many to draw, the last turn's candidates side by side, and choosing one."""

from __future__ import annotations

import gradio as gr

from illustrator.inputs import MAX_CANDIDATES
from illustrator.service import PictureView
from illustrator.wiring import Illustrator
from ui.components import CandidatesArea, Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.views import chat_messages, picture_caption, picture_label, shown_file

DEFAULT_CANDIDATES = 1  # on a CPU each candidate costs a whole picture's time


def candidates_panel() -> CandidatesArea:
    """Lay out the option and the candidates (call inside the column beside the current picture)."""
    count = gr.Slider(
        1,
        MAX_CANDIDATES,
        value=DEFAULT_CANDIDATES,
        step=1,
        label="Candidates per turn (each is a whole picture's time)",
        elem_id="candidates-count",
    )
    gallery = gr.Gallery(
        label="Candidates: choose the one the story goes on from",
        elem_id="candidates",
        columns=MAX_CANDIDATES,
        height=150,
        allow_preview=False,
        object_fit="contain",
        visible=False,
        buttons=[],
    )
    return CandidatesArea(count, gallery, gr.State([]))


def show_candidates(area: CandidatesArea, pictures: tuple[PictureView, ...]) -> Updates:
    """The candidates of the turn just drawn, the first one chosen (hidden when the turn drew only one)."""
    items = [(str(p.path), picture_label(p)) for p in pictures]
    return {
        area.gallery: gr.Gallery(value=items, visible=len(items) > 1, selected_index=0 if items else None),
        area.ids: [p.id for p in pictures],
    }


def wire_candidates(app: Illustrator, page: Page) -> None:
    """Choosing a candidate makes it the turn's picture (the chat shows it; the next message goes on from it)."""
    area, picture = page.candidates, page.picture

    def choose(ids: list[int], sid: str | None, evt: gr.SelectData, request: gr.Request) -> Updates:
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids) or not sid:
            raise gr.Error("That candidate is no longer listed.")
        with writer_errors():
            writer = writer_of(app, request)
            chosen = app.service.choose_candidate(ids[index], writer=writer)
            view = app.library.open_session(sid, writer=writer)
        return {
            page.chat.chat: chat_messages(view),
            picture.current: shown_file(app, chosen, writer),
            picture.details: picture_caption(chosen),
            picture.refined: chosen.prompt,
            page.base_picture: None,
        }

    outputs = [page.chat.chat, picture.current, picture.details, picture.refined, page.base_picture]
    area.gallery.select(choose, [area.ids, page.session_id], outputs, api_visibility="private")
    # Another session opened: the candidates shown belong to the one before.
    page.session_id.change(lambda: show_candidates(area, ()), None, [area.gallery, area.ids], api_visibility="private")
