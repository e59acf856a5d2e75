"""The lineage tree of a session's pictures (click a node to go on from it) and the comparison of two pictures."""

from __future__ import annotations

import difflib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from illustrator.errors import InvalidInput
from illustrator.labels import source_label
from illustrator.refining.changes import diff_lines
from illustrator.refining.sheet import Sheet
from illustrator.service import PictureView
from illustrator.wiring import Illustrator
from ui.components import Page, Updates
from ui.errors import writer_errors
from ui.owners import writer_of
from ui.views import as_text, picture_caption, picture_label, shown_file

EXCERPT_CHARS = 70
MAX_INDENT = 8  # deeper branches are drawn at this depth, so that a long story stays readable
EMPTY_TREE = "<p class='lineage-empty'>The pictures of this session appear here as a tree.</p>"

# One listener on the tree: a click on a node (re-rendered with every turn) says which picture it is.
TREE_JS = """
element.addEventListener('click', (event) => {
  const node = event.target.closest('[data-picture]');
  if (node) { trigger('click', {picture: Number(node.dataset.picture)}); }
});
"""
TREE_CSS = """
.lineage { display: flex; flex-direction: column; gap: 2px; max-height: 420px; overflow-y: auto; }
.lineage-node { text-align: left; border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 3px 8px; background: var(--background-fill-secondary); cursor: pointer; font-size: 0.85em; }
.lineage-node:hover { border-color: var(--color-accent); }
.lineage-node.current { border: 2px solid var(--color-accent); background: var(--color-accent-soft); }
.lineage-branch { color: var(--color-accent); font-weight: 600; }
.lineage-here { font-weight: 600; }
"""


@dataclass(frozen=True)
class TreeRow:
    """One node of the tree as drawn: the picture, how far it is indented, and how many children it has."""

    picture: PictureView
    depth: int  # a chain of edits stays at its depth; each branch of a picture with 2+ children is one deeper
    children: int
    branch_start: bool  # the first picture of one branch (its parent has 2+ children)
    candidates: int = 1  # pictures drawn in its turn from the same parent (the turn's candidates)


def tree_rows(pictures: Sequence[PictureView]) -> list[TreeRow]:
    """The session's pictures as the tree's rows, parent before children, each branch after the one before it.

    A picture whose parent is not among `pictures` (a new picture, or one whose parent was deleted) starts a tree.
    """
    by_id = {p.id: p for p in sorted(pictures, key=lambda p: p.id)}
    children: dict[int | None, list[PictureView]] = {}
    turns: dict[tuple[int, int | None], int] = {}
    for picture in by_id.values():
        parent = picture.parent_id if picture.parent_id in by_id else None
        children.setdefault(parent, []).append(picture)
        turns[picture.turn, parent] = turns.get((picture.turn, parent), 0) + 1
    rows: list[TreeRow] = []
    # Depth first without recursion: a story of hundreds of edits is one long chain.
    stack: list[tuple[PictureView, int, bool]] = [(p, 0, False) for p in reversed(children.get(None, []))]
    while stack:
        picture, depth, branch_start = stack.pop()
        kids = children.get(picture.id, [])
        parent = picture.parent_id if picture.parent_id in by_id else None
        rows.append(TreeRow(picture, depth, len(kids), branch_start, turns[picture.turn, parent]))
        branching = len(kids) > 1
        stack.extend((kid, depth + 1 if branching else depth, branching) for kid in reversed(kids))
    return rows


def tree_html(rows: Sequence[TreeRow], current_id: int | None) -> str:
    """The tree as HTML buttons (the writer's words escaped); the picture the next message continues from is marked."""
    if not rows:
        return EMPTY_TREE
    return "<div class='lineage'>" + "".join(_node_html(row, row.picture.id == current_id) for row in rows) + "</div>"


def _node_html(row: TreeRow, current: bool) -> str:
    picture = row.picture
    prompt = picture.prompt if len(picture.prompt) <= EXCERPT_CHARS else picture.prompt[: EXCERPT_CHARS - 1] + "…"
    mark = "└ " if row.branch_start else ""
    branches = f" <span class='lineage-branch'>▼ {row.children} branches</span>" if row.children > 1 else ""
    candidate = f" <i>(one of {row.candidates} candidates)</i>" if row.candidates > 1 else ""
    here = " <span class='lineage-here'>◀ next message goes on from here</span>" if current else ""
    return (
        f"<button type='button' class='lineage-node{' current' if current else ''}' data-picture='{picture.id}'"
        f" style='margin-left: {min(row.depth, MAX_INDENT) * 18}px' title='{html.escape(picture.prompt)}'>"
        f"{mark}<b>{html.escape(picture_label(picture))}</b> · {html.escape(picture.action)} · "
        f"{html.escape(prompt)}{candidate}{branches}{here}</button>"
    )


def compare_markdown(a: PictureView, b: PictureView) -> str:
    """Two pictures' settings, prompts, and what differs between their prompts and their story sheets."""
    first, second = picture_label(a), picture_label(b)
    lines = [f"| | {first} | {second} |", "|---|---|---|"]
    for name, value in (
        ("action", lambda p: p.action + (f" {p.strength:.2f}" if p.strength is not None else "")),
        ("from", lambda p: source_label(p) or "—"),
        ("seed", lambda p: str(p.seed)),
        ("steps", lambda p: str(p.steps)),
        ("size", lambda p: f"{p.width}x{p.height}"),
    ):
        lines.append(f"| {name} | {value(a)} | {value(b)} |")
    lines += ["", f"**{first} prompt:** {as_text(a.prompt)}", "", f"**{second} prompt:** {as_text(b.prompt)}", ""]
    lines.append(f"**Prompt, {first} → {second}:** " + prompt_difference(a.prompt, b.prompt))
    sheet = sheet_difference(a.sheet, b.sheet)
    lines += ["", f"**Story sheet, {first} → {second}:** " + ("; ".join(as_text(s) for s in sheet) or "the same")]
    return "\n".join(lines)


def prompt_difference(old: str, new: str) -> str:
    """The words taken out and put in between two prompts, as escaped Markdown ("the same" when none)."""
    before, after = old.split(), new.split()
    removed: list[str] = []
    added: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            removed.append(" ".join(before[i1:i2]))
        if op in ("insert", "replace"):
            added.append(" ".join(after[j1:j2]))
    parts = [f"− {as_text(' … '.join(removed))}"] if removed else []
    parts += [f"+ {as_text(' … '.join(added))}"] if added else []
    return " · ".join(parts) or "the same"


def sheet_difference(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """What changed on the story sheet between two pictures, one line each (none when either has no sheet)."""
    if not old or not new:
        return []
    try:
        return diff_lines(Sheet.from_dict(old), Sheet.from_dict(new))
    except InvalidInput:
        return []


@dataclass(frozen=True)
class LineageArea:
    """The tree beside the current picture, and the comparison of two pictures under the chat."""

    tree: gr.HTML
    first: gr.Dropdown
    second: gr.Dropdown
    first_image: gr.Image
    second_image: gr.Image
    difference: gr.Markdown


def lineage_panel() -> gr.HTML:
    """Lay out the tree (call inside the column beside the current picture)."""
    with gr.Accordion("Lineage", open=True, elem_id="lineage"):
        return gr.HTML(EMPTY_TREE, elem_id="lineage-tree", js_on_load=TREE_JS, css_template=TREE_CSS)


def compare_panel(tree: gr.HTML) -> LineageArea:
    """Lay out the comparison of two pictures (call inside the Chat tab, under the chat)."""
    with gr.Accordion("Compare two pictures", open=False, elem_id="compare"):
        with gr.Row():
            first = gr.Dropdown([], label="Picture", elem_id="compare-first")
            second = gr.Dropdown([], label="with picture", elem_id="compare-second")
        with gr.Row(equal_height=True):
            options: dict[str, Any] = {"type": "filepath", "format": "png", "interactive": False, "height": 320}
            options["buttons"] = ["download", "fullscreen"]  # no "share": it only works on Hugging Face Spaces
            first_image = gr.Image(label="First", elem_id="compare-first-picture", **options)
            second_image = gr.Image(label="Second", elem_id="compare-second-picture", **options)
        difference = gr.Markdown("*Choose two pictures.*", elem_id="compare-difference")
    return LineageArea(tree, first, second, first_image, second_image, difference)


def wire_lineage(app: Illustrator, page: Page, area: LineageArea) -> None:
    """Redraw the tree when the shown picture changes; a click on a node goes on from it; compare two pictures."""

    def show(sid: str | None, base: int | None, request: gr.Request) -> Updates:
        if not sid:
            return {area.tree: EMPTY_TREE, area.first: gr.Dropdown(choices=[]), area.second: gr.Dropdown(choices=[])}
        with writer_errors():
            writer = writer_of(app, request)
            pictures = app.library.session_pictures(sid, writer=writer)
            current = base or _current_id(app, sid, request)
        choices = [(f"{picture_label(p)} · {p.action} · {p.prompt[:40]}", p.id) for p in pictures]
        return {
            area.tree: tree_html(tree_rows(pictures), current),
            area.first: gr.Dropdown(choices=choices),
            area.second: gr.Dropdown(choices=choices),
        }

    # The details change once a picture is drawn, opened or chosen (not with every live preview).
    page.picture.details.change(
        show, [page.session_id, page.base_picture], [area.tree, area.first, area.second], show_progress="hidden",
        api_visibility="private",
    )  # fmt: skip

    def go_on_from(evt: gr.EventData, request: gr.Request) -> Updates:
        data = evt._data if isinstance(evt._data, dict) else {}
        with writer_errors():
            writer = writer_of(app, request)
            picture = app.library.get_picture(int(data.get("picture") or 0), writer=writer)
        note = f"**Your next message continues from picture {picture_label(picture)}.**\n\n"
        return {
            page.picture.current: shown_file(app, picture, writer),
            page.picture.details: note + picture_caption(picture),
            page.picture.refined: picture.prompt,
            page.base_picture: picture.id,
        }

    picture = page.picture
    area.tree.click(
        go_on_from, None, [picture.current, picture.details, picture.refined, page.base_picture],
        api_visibility="private",
    )  # fmt: skip

    def compare(first: int | None, second: int | None, request: gr.Request) -> Updates:
        if not first or not second:
            return {area.difference: "*Choose two pictures.*"}
        with writer_errors():
            writer = writer_of(app, request)
            a, b = (app.library.get_picture(int(i), writer=writer) for i in (first, second))
        return {
            area.first_image: gr.Image(value=str(a.path), label=f"Picture {picture_label(a)}"),
            area.second_image: gr.Image(value=str(b.path), label=f"Picture {picture_label(b)}"),
            area.difference: compare_markdown(a, b),
        }

    outputs = [area.first_image, area.second_image, area.difference]
    for box in (area.first, area.second):
        box.change(compare, [area.first, area.second], outputs, api_visibility="private")
    gr.Button(visible=False).click(compare, [area.first, area.second], outputs, api_name="compare")


def _current_id(app: Illustrator, sid: str, request: gr.Request) -> int | None:
    picture = app.library.open_session(sid, writer=writer_of(app, request)).current_picture
    return picture.id if picture is not None else None
