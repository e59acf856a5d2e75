"""The page's components, grouped by area, so that each area's events can name what they update."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.blocks import Block

from illustrator.images import unreadable_reason

logger = logging.getLogger(__name__)

# What a handler returns: the new value (or a gr.update-style component) of each output it changes; the rest stay.
Updates = dict[Block, Any]

SIZES = ["auto", "256x256", "512x512", "512x768", "768x512", "768x768", "1024x1024"]
ACTIONS = [
    ("Let the refiner decide", "auto"),
    ("New picture", "new"),
    ("Edit this picture", "edit"),
    ("Variation", "variation"),
]


@dataclass
class SessionsArea:
    """The left column: new session, search, the session list and the open session's panel."""

    new_session: gr.Button
    search: gr.Textbox
    sessions: gr.Dataset
    panel: gr.Accordion
    title: gr.Textbox
    rename: gr.Button
    share: gr.Button
    unshare: gr.Button
    link: gr.Textbox
    export: gr.Button
    export_starred: gr.Checkbox  # the export takes only the starred pictures
    export_file: gr.File
    delete: gr.Button
    confirm: gr.Group
    confirm_text: gr.Markdown
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    address: gr.Textbox  # the open session's id, written into the page's address (?session=ID)


@dataclass
class ChatArea:
    """The conversation and the message box."""

    chat: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    waiting: gr.Markdown  # why Send is off while a picture is drawn (the next message waits in the box)


@dataclass
class PictureArea:
    """The current picture, its details, and the controls for the next turn."""

    current: gr.Image
    details: gr.Markdown
    action: gr.Radio
    strength: gr.Slider
    seed: gr.Number
    steps: gr.Slider
    size: gr.Dropdown
    negative: gr.Textbox
    prompt: gr.Textbox
    start: gr.Image
    import_picture: gr.UploadButton
    pin: gr.Checkbox  # keep the overrides for later turns (otherwise they are for one turn)
    refined: gr.Textbox  # the current picture's refined prompt, editable in place
    redraw: gr.Button

    @property
    def controls(self) -> list[Block]:
        """The overrides of the next turn, in the order the send handler takes them."""
        return [self.action, self.strength, self.seed, self.steps, self.size, self.negative, self.prompt, self.start]


AUTOMATIC = ["auto", 0, -1, 0, "auto", "", "", None]  # the controls' values that override nothing, in that order


@dataclass
class GalleryArea:
    """The Gallery tab: pages of thumbnails and the chosen picture."""

    tab: gr.Tab
    page: gr.State
    ids: gr.State
    chosen: gr.State
    scope: gr.Radio
    newer: gr.Button
    page_label: gr.Markdown
    older: gr.Button
    gallery: gr.Gallery
    chosen_image: gr.Image
    chosen_details: gr.Markdown
    download: gr.DownloadButton
    continue_from: gr.Button
    starred_only: gr.Checkbox  # show only the starred pictures
    star: gr.Button  # star the chosen picture, or take its star away


@dataclass
class CandidatesArea:
    """How many pictures a turn draws, and the candidates of the last turn, side by side, to choose from."""

    count: gr.Slider
    gallery: gr.Gallery
    ids: gr.State  # the picture ids of the gallery's items, in order


@dataclass
class Page:
    """Every area of the page, and the values shared between them."""

    tabs: gr.Tabs
    session_id: gr.State
    session_ids: gr.JSON  # the ids of the session list's rows, in order (also for the API)
    base_picture: gr.State  # "continue from this picture": the base of the next turn (a branch)
    sessions: SessionsArea
    chat: ChatArea
    picture: PictureArea
    gallery: GalleryArea
    candidates: CandidatesArea

    @property
    def opened(self) -> list[Block]:
        """What opening a session changes."""
        picture = self.picture
        return [self.chat.chat, picture.current, picture.details, picture.refined, self.session_id, self.base_picture]


@dataclass(frozen=True)
class RefusedUpload:
    """A starting picture Gradio could not open: the turn that would use it is refused with this reason."""

    reason: str


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
            return RefusedUpload(unreadable_reason(e))  # the turn says so, as a message, not as a broken output

    # An instance attribute, not a gr.Image subclass: Gradio writes a .pyi stub next to every subclass's module.
    image.preprocess = preprocess  # type: ignore[method-assign]
    return image
