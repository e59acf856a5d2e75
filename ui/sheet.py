"""The Story sheet panel beside the current picture: the cast and the scene, edited in place, locked per click."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from illustrator.errors import IllustratorError
from illustrator.refining.changes import SCENE, diff_lines
from illustrator.refining.history import panel_op
from illustrator.refining.reading import REDRAW_WITH_SHEET
from illustrator.refining.sheet import Sheet
from illustrator.service import SessionView
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.views import as_text


@dataclass(frozen=True)
class SheetArea:
    """The panel: the sheet as text, the attribute chosen (or a new one typed), its value, and what to do with it."""

    view: gr.Markdown
    attribute: gr.Dropdown
    value: gr.Textbox
    set: gr.Button
    remove: gr.Button
    lock: gr.Button
    redraw: gr.Button


def sheet_panel() -> SheetArea:
    """Lay out the panel (call inside the column beside the current picture)."""
    with gr.Accordion("Story sheet", open=True, elem_id="story-sheet"):
        view = gr.Markdown("*The story sheet appears with the first picture.*", elem_id="story-sheet-view")
        with gr.Row():
            attribute = gr.Dropdown(
                [],
                label="Attribute (choose one, or type a new one)",
                elem_id="sheet-attribute",
                allow_custom_value=True,
                scale=2,
            )
            value = gr.Textbox(label="Value", elem_id="sheet-value", max_lines=1, scale=2)
        with gr.Row():
            set_value = gr.Button("Set", size="sm", elem_id="sheet-set")
            remove = gr.Button("Remove", size="sm", elem_id="sheet-remove")
            lock = gr.Button("Lock / unlock", size="sm", elem_id="sheet-lock")
            redraw = gr.Button("Redraw with the sheet", size="sm", elem_id="sheet-redraw")
    return SheetArea(view, attribute, value, set_value, remove, lock, redraw)


def wire_sheet(app: Illustrator, page: Page, area: SheetArea) -> None:
    """Show the current picture's sheet whenever the picture or the chat changes; edit, lock, redraw from it."""

    def show(sid: str | None, request: gr.Request) -> Updates:
        shown = _current(app, sid, request)
        return {
            area.view: sheet_markdown(shown.sheet, shown.drawn),
            area.attribute: gr.Dropdown(choices=attribute_choices(shown.sheet), value=None),
            area.value: "",
        }

    def choose(sid: str | None, choice: str | None, request: gr.Request) -> Updates:
        shown = _current(app, sid, request)
        subject, attribute = _chosen(choice)
        return {area.value: _text_of(shown.sheet, subject, attribute) if shown.sheet and attribute else ""}

    outputs = [area.view, area.attribute, area.value]
    gr.on(
        [page.picture.current.change, page.chat.chat.change],
        show,
        [page.session_id],
        outputs,
        api_name="story_sheet",
        show_progress="hidden",
    )
    area.attribute.input(choose, [page.session_id, area.attribute], [area.value], api_visibility="private")
    _wire_edits(app, page, area)
    _wire_redraw(page, area)


def _wire_edits(app: Illustrator, page: Page, area: SheetArea) -> None:
    """Set or remove a value (the next turn starts from it), lock or unlock one."""

    def edit(remove: bool) -> Any:
        def change(sid: str | None, choice: str | None, value: str, request: gr.Request) -> Updates:
            shown = _current(app, sid, request)
            subject, attribute = _chosen(choice)
            if shown.sheet is None or shown.picture_id is None or not attribute:
                raise gr.Error("Choose an attribute of the current picture's sheet (or type a new one) first.")
            with writer_errors():
                op = panel_op(shown.sheet, subject, attribute, None if remove else value)
                sheet = app.service.change_sheet(shown.picture_id, [op], writer=writer_of(app, request))
            choices = attribute_choices(sheet)
            return {
                area.view: sheet_markdown(sheet, shown.drawn or shown.sheet),
                area.attribute: gr.Dropdown(choices=choices, value=None),
                area.value: "",
            }

        return change

    def toggle(sid: str | None, choice: str | None, request: gr.Request) -> Updates:
        shown = _current(app, sid, request)
        subject, attribute = _chosen(choice)
        if shown.sheet is None or shown.picture_id is None or subject is None or not attribute:
            raise gr.Error("Choose an attribute of the current picture's sheet first.")
        locked = _is_locked(shown.sheet, subject, attribute)
        with writer_errors():
            sheet = app.service.set_lock(
                shown.picture_id, subject, attribute, not locked, writer=writer_of(app, request)
            )
        return {area.view: sheet_markdown(sheet, shown.drawn)}

    outputs = [area.view, area.attribute, area.value]
    sheet_inputs = [page.session_id, area.attribute, area.value]
    area.set.click(edit(False), sheet_inputs, outputs, api_name="set_sheet_value")
    area.remove.click(edit(True), sheet_inputs, outputs, api_name="remove_sheet_value")
    area.lock.click(toggle, [page.session_id, area.attribute], [area.view], api_name="lock_attribute")


def _wire_redraw(page: Page, area: SheetArea) -> None:
    def ask_redraw(message: str) -> Updates:
        if message and message.strip():
            raise gr.Error("Send or clear the message you are typing first.")
        return {page.chat.message: REDRAW_WITH_SHEET}

    # A redraw is an ordinary turn (its reply shows what the panel changed), sent by the page's own Send button.
    area.redraw.click(
        ask_redraw, [page.chat.message], [page.chat.message], api_visibility="private", queue=False
    ).success(None, None, None, js="() => document.querySelector('#send-button')?.click()")


@dataclass(frozen=True)
class _Shown:
    sheet: dict[str, Any] | None = None
    picture_id: int | None = None
    drawn: dict[str, Any] | None = None  # the sheet the picture was drawn from (before the panel's edits)


def _current(app: Illustrator, sid: str | None, request: gr.Request | None) -> _Shown:
    if not sid:
        return _Shown()
    with writer_errors():
        view = app.library.open_session(sid, writer=writer_of(app, request))
    picture = view.current_picture
    if picture is None:
        return _Shown()
    return _Shown(picture.sheet, picture.id, _drawn(view, picture.id))


def _drawn(view: SessionView, picture_id: int) -> dict[str, Any] | None:
    plans = (m.plan for m in view.messages if m.picture is not None and m.picture.id == picture_id and m.plan)
    sheet = next((plan.get("sheet") for plan in plans), None)
    return sheet if isinstance(sheet, dict) else None


def _chosen(choice: str | None) -> tuple[str | None, str]:
    """(subject key, attribute) of a choice ("kael|hair"); a typed name is a new attribute of the subject in focus."""
    if not choice:
        return None, ""
    if "|" in choice:
        subject, attribute = choice.split("|", 1)
        return subject, attribute
    return None, choice.strip()


def _text_of(sheet: dict[str, Any], subject: str | None, attribute: str) -> str:
    if subject == SCENE:
        return str(sheet.get("scene", {}).get(attribute, {}).get("text", ""))
    key = subject or sheet.get("focus")
    cast = {s["key"]: s for s in sheet.get("cast", [])}
    return str(cast.get(key, {}).get("attributes", {}).get(attribute, {}).get("text", ""))


def _is_locked(sheet: dict[str, Any], subject: str, attribute: str) -> bool:
    if subject == SCENE:
        return bool(sheet.get("scene", {}).get(attribute, {}).get("locked"))
    cast = {s["key"]: s for s in sheet.get("cast", [])}
    return bool(cast.get(subject, {}).get("attributes", {}).get(attribute, {}).get("locked"))


def sheet_markdown(sheet: dict[str, Any] | None, drawn: dict[str, Any] | None = None) -> str:
    """The cast in the picture and the scene as short Markdown lines; a lock sign marks a locked value; what the
    writer changed since the picture was drawn (`drawn`) is listed under it."""
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
    pending = _pending(sheet, drawn)
    if pending:
        lines += ["", "**Changed since this picture was drawn** (the next picture uses it):"]
        lines += [f"- {as_text(line)}" for line in pending]
    return "\n".join(lines)


def _pending(sheet: dict[str, Any], drawn: dict[str, Any] | None) -> list[str]:
    if not drawn or drawn == sheet:
        return []
    try:
        lines = diff_lines(Sheet.from_dict(drawn), Sheet.from_dict(sheet))
    except IllustratorError:
        return []
    return [line for line in lines if not line.startswith(("locked:", "unlocked:"))]


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
    return f"{as_text(name.replace('_', ' '))}: {as_text(str(value.get('text', '')))}{lock}"
