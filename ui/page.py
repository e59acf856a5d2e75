"""The page's layout: a Chat tab (sessions, conversation, current picture) and a Gallery tab; events live per area."""

from __future__ import annotations

import gradio as gr

from illustrator.models import LoadState
from illustrator.wiring import Illustrator
from ui import candidates, chat, gallery, lineage, sessions, sheet, story
from ui.components import (
    ACTIONS,
    SIZES,
    ChatArea,
    GalleryArea,
    Page,
    PictureArea,
    SessionsArea,
    start_picture_input,
)


def build_ui(app: Illustrator) -> gr.Blocks:
    """The Blocks page: lays out each area, then wires each area's events."""
    demo: gr.Blocks
    with gr.Blocks(title="Illustrator") as demo:
        session_id = gr.State(None)
        session_ids = gr.JSON([], visible=False)
        base_picture = gr.State(None)
        with gr.Row(elem_id="header"):
            gr.Markdown("## Illustrator\nDescribe a character or a scene; ask for changes in plain words.")
            status = gr.Markdown(status_markdown(app), elem_id="model-status")
        status_timer = gr.Timer(1.0)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Chat", id="chat-tab", elem_id="chat-tab"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        sessions_area = _sessions_column()
                    with gr.Column(scale=3):
                        chat_area = _chat_column(app)
                    with gr.Column(scale=2):
                        picture_area = _picture_column()
                        candidates_area = candidates.candidates_panel()
                        sheet_area = sheet.sheet_panel()
                        tree = lineage.lineage_panel()
                lineage_area = lineage.compare_panel(tree)
            with gr.Tab("Gallery", id="gallery-tab", elem_id="gallery-tab") as gallery_tab:
                gallery_area = _gallery_tab(gallery_tab)
            with gr.Tab("Story", id="story-tab", elem_id="story-tab"):
                story_area = story.build_story_tab()
        page = Page(
            tabs, session_id, session_ids, base_picture, sessions_area, chat_area, picture_area, gallery_area,
            candidates_area,
        )  # fmt: skip
        chat.wire_chat(app, page)
        sessions.wire_sessions(app, page, demo)
        gallery.wire_gallery(app, page)
        story.wire_story(app, page, story_area)
        sheet.wire_sheet(app, page, sheet_area)
        lineage.wire_lineage(app, page, lineage_area)
        candidates.wire_candidates(app, page)

        def refresh_status() -> dict[gr.Markdown | gr.Timer, object]:
            ready = app.models.status().state is not LoadState.LOADING
            return {status: status_markdown(app), status_timer: gr.Timer(active=not ready)}

        status_timer.tick(
            refresh_status, None, [status, status_timer], api_visibility="private", show_progress="hidden"
        )
    return demo


def status_markdown(app: Illustrator) -> str:
    """The model status line for the page header."""
    status = app.models.status()
    if status.state is LoadState.READY and status.placeholder:
        return f"⚠️ {status.summary}"
    return status.summary


def _sessions_column() -> SessionsArea:
    new_session = gr.Button("New session", elem_id="new-session", variant="secondary")
    search = gr.Textbox(
        placeholder="Search messages and prompts…", show_label=False, elem_id="session-search", max_lines=1
    )
    session_list = gr.Dataset(
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
        export_starred = gr.Checkbox(False, label="Only the starred pictures", elem_id="export-starred")
        export_file = gr.File(label="Export", visible=False, elem_id="export-file")
        delete = gr.Button("Delete session…", size="sm", variant="stop", elem_id="delete-session")
        with gr.Group(visible=False, elem_id="delete-confirm") as confirm:
            confirm_text = gr.Markdown()
            with gr.Row():
                confirm_delete = gr.Button("Delete", size="sm", variant="stop", elem_id="confirm-delete")
                cancel_delete = gr.Button("Keep it", size="sm", elem_id="cancel-delete")
    address = gr.Textbox(visible=False, elem_id="session-address")
    return SessionsArea(
        new_session,
        search,
        session_list,
        panel,
        title,
        rename,
        share,
        unshare,
        link,
        export,
        export_starred,
        export_file,
        delete,
        confirm,
        confirm_text,
        confirm_delete,
        cancel_delete,
        address,
    )


def _chat_column(app: Illustrator) -> ChatArea:
    conversation = gr.Chatbot(elem_id="chat", height=560, label="Conversation", buttons=["copy"])
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
    waiting = gr.Markdown(elem_id="send-waiting")
    return ChatArea(conversation, message, send, stop, waiting)


def _picture_column() -> PictureArea:
    current = gr.Image(
        label="Current picture",
        elem_id="current-picture",
        type="filepath",
        format="png",
        interactive=False,
        buttons=["download", "fullscreen"],
    )
    details = gr.Markdown(elem_id="picture-details")
    refined = gr.Textbox(label="Prompt of this picture (edit it, then redraw)", lines=3, elem_id="picture-prompt")
    redraw = gr.Button("Redraw with this prompt", size="sm", elem_id="redraw")
    with gr.Accordion("Controls for the next turn", open=False):
        pin = gr.Checkbox(False, label="Keep these controls for later turns (otherwise they reset)", elem_id="pin")
        action = gr.Radio(ACTIONS, value="auto", label="Action", elem_id="action")
        strength = gr.Slider(0, 1, value=0, step=0.05, label="Edit strength (0 = let the refiner decide)")
        seed = gr.Number(value=-1, precision=0, label="Seed (-1 = new random seed)", elem_id="seed")
        steps = gr.Slider(0, 50, value=0, step=1, label="Steps (0 = the model's default)")
        size = gr.Dropdown(SIZES, value="auto", label="Size", allow_custom_value=True)
        negative = gr.Textbox("", label="Negative prompt (empty = the refiner's)", lines=2)
        prompt = gr.Textbox("", label="Use this prompt instead of the refined one", lines=2)
        start = start_picture_input(
            label="Your own starting picture (optional)", sources=["upload"], elem_id="start-picture"
        )
        import_picture = gr.UploadButton(
            "Import a picture made by Illustrator…", file_types=[".png"], size="sm", elem_id="import-picture"
        )
    return PictureArea(
        current,
        details,
        action,
        strength,
        seed,
        steps,
        size,
        negative,
        prompt,
        start,
        import_picture,
        pin,
        refined,
        redraw,
    )


def _gallery_tab(tab: gr.Tab) -> GalleryArea:
    page = gr.State(1)
    ids = gr.State([])
    chosen = gr.State(None)  # the picture chosen in the gallery
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                scope = gr.Radio(
                    [("This session", "session"), ("All sessions", "all")],
                    value="session",
                    show_label=False,
                    info="Newest first",
                    elem_id="gallery-scope",
                    scale=3,
                )
                starred_only = gr.Checkbox(False, label="★ Starred only", elem_id="gallery-starred", scale=1)
                newer = gr.Button("‹ Previous", size="sm", scale=1, min_width=80, elem_id="gallery-prev")
                page_label = gr.Markdown(elem_id="gallery-page")
                older = gr.Button("Next ›", size="sm", scale=1, min_width=80, elem_id="gallery-next")
            grid = gr.Gallery(
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
                download = gr.DownloadButton("Download PNG", visible=False, elem_id="download-picture", size="sm")
                star = gr.Button("☆ Star", visible=False, elem_id="star-picture", size="sm")
                continue_from = gr.Button(
                    "Continue from this picture", variant="primary", visible=False, elem_id="continue-from", size="sm"
                )
    return GalleryArea(
        tab,
        page,
        ids,
        chosen,
        scope,
        newer,
        page_label,
        older,
        grid,
        chosen_image,
        chosen_details,
        download,
        continue_from,
        starred_only,
        star,
    )
