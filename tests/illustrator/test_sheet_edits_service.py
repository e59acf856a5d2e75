"""The turn service with sheet edits: a lock said in chat stores a reply and no picture; the panel's edits are drawn."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from illustrator.errors import InvalidInput, NotFound
from illustrator.export import export_session
from illustrator.refining.history import panel_op
from illustrator.refining.reading import REDRAW_WITH_SHEET
from illustrator.writers import Writer
from tests.illustrator.test_service import library_for
from tests.illustrator.test_sheet_service import make_service, tiny_generator  # noqa: F401 - the fixture


def test_a_lock_in_chat_stores_a_reply_and_no_picture(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "a mermaid with long black hair sitting on a rock")
    locked = service.send(first.session_id, "keep her hair")
    assert locked.drew is False and locked.picture.id == first.picture.id
    assert locked.reply.picture is None and locked.reply.content.startswith("Locked the mermaid's hair")

    view = library_for(service, data_dir).open_session(first.session_id)
    assert [m.picture.id for m in view.messages if m.picture] == [first.picture.id]  # nothing new was drawn
    assert view.messages[-1].content == locked.reply.content  # the one-line reply is in the conversation
    current = view.current_picture
    assert current is not None and current.sheet is not None
    assert current.sheet["cast"][0]["attributes"]["hair"]["locked"] is True

    refused = service.send(first.session_id, "make her hair red")
    assert refused.drew and "long black hair" in refused.picture.prompt and "locked" in refused.reply.content


def test_the_panels_edit_is_drawn_by_the_redraw_and_its_reply_shows_it(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "a mermaid with long black hair sitting on a rock")
    sheet = first.picture.sheet
    assert sheet is not None
    edited = service.change_sheet(first.picture.id, [panel_op(sheet, "mermaid", "hair", "long silver hair")])
    assert edited["cast"][0]["attributes"]["hair"]["text"] == "long silver hair"
    service.change_sheet(first.picture.id, [panel_op(edited, None, "scar", "a scar on the cheek")])

    redrawn = service.send(first.session_id, REDRAW_WITH_SHEET)
    assert redrawn.drew and redrawn.picture.id != first.picture.id and redrawn.picture.action == "edit"
    assert "long silver hair" in redrawn.picture.prompt and "scar on the cheek" in redrawn.picture.prompt
    assert (
        "hair: long black → long silver" in redrawn.reply.content and "+ a scar on the cheek" in redrawn.reply.content
    )
    # the next turn continues from the redrawn picture: nothing is pending any more
    again = service.send(first.session_id, "make her hair blue")
    assert "long blue hair" in again.picture.prompt and "long black → long silver" not in again.reply.content

    with pytest.raises(InvalidInput):
        service.change_sheet(first.picture.id, [panel_op(edited, "mermaid", "wings", None)])
    someone = Writer.from_login("someone")
    with pytest.raises(NotFound):  # another writer's picture
        service.change_sheet(first.picture.id, [panel_op(edited, None, "hair", "red")], writer=someone)


def test_the_storyboard_shows_each_pictures_sheet_escaped(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "Meet Kael: shaved head, crow tattoo, leather jacket")
    service.send(first.session_id, "lock his tattoo")
    sheet = json.loads(json.dumps(first.picture.sheet))
    service.change_sheet(first.picture.id, [panel_op(sheet, None, "mark", 'a scar like a "C" & a star')])
    service.send(first.session_id, "now draw Kael in a night market")
    path = export_session(library_for(service, data_dir).open_session(first.session_id), data_dir / "exports")
    with zipfile.ZipFile(path) as archive:
        html = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".html"))
        markdown = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".md"))
    assert html.count('<ul class="sheet"') == 2  # each picture with the sheet it was drawn from
    assert "<li>Kael: shaved head; crow tattoo; leather jacket</li>" in html
    locked = "Kael: shaved head; crow tattoo (locked); leather jacket; a scar like a &quot;C&quot; &amp; a star"
    assert f"<li>{locked}</li>" in html and '"C"' not in html
    assert "<li>Scene: setting: in a night market</li>" in html
    assert '- Kael: shaved head; crow tattoo (locked); leather jacket; a scar like a "C" & a star' in markdown


def test_the_manuscripts_credits_list_each_illustrations_sheet(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    from illustrator.manuscript import build_manuscript, manuscript_html

    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "Meet Kael: shaved head, crow tattoo, <i>leather</i> jacket")
    manuscript = build_manuscript(library_for(service, data_dir).open_session(first.session_id))
    page = manuscript_html(manuscript)
    credits = page[page.index('id="credits"') :]
    assert "Story sheet: Kael: shaved head; crow tattoo; leather jacket." in credits
    assert "<i>" not in page
