"""The Story sheet panel beside the current picture: the cast and the scene after each turn, and a lock per click."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from illustrator.refining.changes import SCENE
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.views import as_text


@dataclass(frozen=True)
class SheetArea:
    """The panel: the sheet as text, the attribute to lock or unlock, and the button that does it."""

    view: gr.Markdown
    attribute: gr.Dropdown
    lock: gr.Button


def sheet_panel() -> SheetArea:
    """Lay out the panel (call inside the column beside the current picture)."""
    with gr.Accordion("Story sheet", open=True, elem_id="story-sheet"):
        view = gr.Markdown("*The story sheet appears with the first picture.*", elem_id="story-sheet-view")
        with gr.Row():
            attribute = gr.Dropdown([], label="Attribute", elem_id="sheet-attribute", scale=3)
            lock = gr.Button("Lock / unlock", size="sm", elem_id="sheet-lock", scale=1)
    return SheetArea(view, attribute, lock)


def wire_sheet(app: Illustrator, page: Page, area: SheetArea) -> None:
    """Show the current picture's sheet whenever the picture changes; lock or unlock the chosen attribute."""

    def show(sid: str | None, request: gr.Request) -> Updates:
        sheet, _ = _current_sheet(app, sid, request)
        return {area.view: sheet_markdown(sheet), area.attribute: gr.Dropdown(choices=attribute_choices(sheet))}

    def toggle(sid: str | None, choice: str | None, request: gr.Request) -> Updates:
        sheet, picture_id = _current_sheet(app, sid, request)
        if sheet is None or picture_id is None or not choice or "|" not in choice:
            raise gr.Error("Choose an attribute of the current picture's sheet first.")
        subject, attribute = choice.split("|", 1)
        locked = _is_locked(sheet, subject, attribute)
        with writer_errors():
            sheet = app.service.set_lock(picture_id, subject, attribute, not locked, writer=writer_of(app, request))
        return {area.view: sheet_markdown(sheet)}

    page.picture.current.change(
        show, [page.session_id], [area.view, area.attribute], api_name="story_sheet", show_progress="hidden"
    )
    area.lock.click(toggle, [page.session_id, area.attribute], [area.view], api_name="lock_attribute")


def _current_sheet(
    app: Illustrator, sid: str | None, request: gr.Request | None
) -> tuple[dict[str, Any] | None, int | None]:
    if not sid:
        return None, None
    with writer_errors():
        picture = app.library.open_session(sid, writer=writer_of(app, request)).current_picture
    return (picture.sheet, picture.id) if picture is not None else (None, None)


def _is_locked(sheet: dict[str, Any], subject: str, attribute: str) -> bool:
    if subject == SCENE:
        return bool(sheet.get("scene", {}).get(attribute, {}).get("locked"))
    cast = {s["key"]: s for s in sheet.get("cast", [])}
    return bool(cast.get(subject, {}).get("attributes", {}).get(attribute, {}).get("locked"))


def sheet_markdown(sheet: dict[str, Any] | None) -> str:
    """The cast in the picture and the scene as short Markdown lines; a lock sign marks a locked value."""
    if not sheet:
        return "*This picture has no story sheet.*"
    lines = ["**Cast**"]
    visible = set(sheet.get("visible", []))
    for subject in sheet.get("cast", []):
        if subject["key"] not in visible:
            continue
        focus = " (in focus)" if subject["key"] == sheet.get("focus") else ""
        values = [_value(name, value) for name, value in subject.get("attributes", {}).items()]
        lines.append(f"- **{as_text(subject['name'])}**{focus}: " + "; ".join(values))
    scene = sheet.get("scene", {})
    if scene:
        lines += ["", "**Scene**"] + [f"- {_value(name, value)}" for name, value in scene.items()]
    return "\n".join(lines)


def attribute_choices(sheet: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, "subject|attribute") for every value on the sheet that can be locked."""
    if not sheet:
        return []
    visible = set(sheet.get("visible", []))
    choices = [
        (f"{s['name']} · {name.replace('_', ' ')}", f"{s['key']}|{name}")
        for s in sheet.get("cast", [])
        if s["key"] in visible
        for name in s.get("attributes", {})
    ]
    return choices + [(f"scene · {name.replace('_', ' ')}", f"{SCENE}|{name}") for name in sheet.get("scene", {})]


def _value(name: str, value: dict[str, Any]) -> str:
    lock = " 🔒" if value.get("locked") else ""
    return f"{name.replace('_', ' ')}: {as_text(str(value.get('text', '')))}{lock}"
