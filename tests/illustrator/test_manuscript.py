"""The illustrated manuscript: each format written, then read back (ebooklib, pypdf, Chromium)."""

from __future__ import annotations

import re
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from illustrator.ebook import FONT_FOLDERS
from illustrator.errors import StorageError
from illustrator.manuscript import build_manuscript, export_manuscript
from illustrator.service import MessageView, PictureView, SessionView
from illustrator.story import Beat, describe_beat, split_into_beats
from tests.app.test_browser import browser  # noqa: F401 - the Chromium fixture
from tests.illustrator.test_stories import POEM


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _picture(folder: Path, number: int, artists: tuple[str, ...] = (), size: int = 64) -> PictureView:
    path = folder / f"picture-{number}.png"
    Image.effect_noise((size, size), 40 + number).convert("RGB").save(path)
    return PictureView(
        id=number, session_id="a" * 32, file_name=path.name, path=path, turn=number, prompt=f"prompt {number}",
        negative_prompt="", action="new", strength=None, seed=number, steps=1, guidance_scale=0.0, width=size,
        height=size, model="offline", parent_id=None, created_at=datetime.now(timezone.utc), artists=artists,
    )  # fmt: skip


def _illustrated(folder: Path, passage: str, beats: list[Beat], title: str = "The Keeper <& the Sea>", size: int = 64):
    pictures = [_picture(folder, i + 1, ("Claude Monet",) if i == 1 else (), size) for i in range(len(beats))]
    messages = [MessageView(i + 1, "assistant", "Here it is.", i + 1, None, p) for i, p in enumerate(pictures)]
    beats = [Beat(**{**b.to_dict(), "who": b.who, "picture_id": p.id}) for b, p in zip(beats, pictures, strict=True)]
    return build_manuscript(SessionView("a" * 32, title, messages, pictures[-1]), passage, beats)


def test_epub_reads_back_with_its_chapters_images_and_credits(tmp_path: Path) -> None:
    from ebooklib import ITEM_DOCUMENT, ITEM_IMAGE, epub

    manuscript = _illustrated(tmp_path, POEM, split_into_beats(POEM))
    path = export_manuscript(manuscript, tmp_path / "out", "epub")
    assert path.name == "the-keeper-the-sea.epub"
    book = epub.read_epub(str(path))
    assert book.get_metadata("DC", "title")[0][0] == "The Keeper <& the Sea>"
    documents = {item.get_name(): item.get_content().decode() for item in book.get_items_of_type(ITEM_DOCUMENT)}
    assert {"title.xhtml", "chapter-1.xhtml", "credits.xhtml"} <= set(documents)
    chapter = documents["chapter-1.xhtml"]
    assert chapter.count("<img") == 3 and "with lantern raised against the night;" in chapter
    assert chapter.index("images/picture-2.png") < chapter.index("At dawn a boat")  # the picture at its beat
    assert (
        "Style after Claude Monet" in documents["credits.xhtml"]
        and "General model output" in documents["credits.xhtml"]
    )
    assert "&lt;&amp; the Sea&gt;" in documents["title.xhtml"]  # escaped, never markup
    images = sorted(item.get_name() for item in book.get_items_of_type(ITEM_IMAGE))
    assert images == ["images/picture-1.png", "images/picture-2.png", "images/picture-3.png"]


def test_pdf_text_holds_the_passage_and_the_credits(tmp_path: Path) -> None:
    from pypdf import PdfReader

    left_to_right = POEM + "\nЛодка плывёт. Η βάρκα πλέει."
    passage = left_to_right + " הסירה שטה.\n"  # scripts the writer may use, right-to-left too
    manuscript = _illustrated(tmp_path, passage, split_into_beats(passage))
    reader = PdfReader(export_manuscript(manuscript, tmp_path / "out", "pdf"))
    text = "\n".join(page.extract_text() for page in reader.pages)
    pdf_words = iter(_words(text))
    assert all(word in pdf_words for word in _words(left_to_right))  # every word of the passage, in order
    assert "Лодка плывёт" in text and "βάρκα" in text and "הסירה" in text and "שטה" in text
    assert "Style after Claude Monet" in text
    assert sum(len(page.images) for page in reader.pages) == len(manuscript.illustrations) == 4


def test_pdf_without_any_font_says_what_to_install(tmp_path: Path) -> None:
    from illustrator.ebook import write_pdf

    manuscript = _illustrated(tmp_path, POEM, split_into_beats(POEM))
    with pytest.raises(StorageError, match="apt-get install fonts-dejavu-core"):
        write_pdf(manuscript, tmp_path / "x.pdf", font_folders=[tmp_path / "no-fonts"])
    assert not (tmp_path / "x.pdf").exists()


CJK_PASSAGE = """The Lantern Festival

灯笼在河上漂流，孩子们在桥上唱歌。
提灯の明かりが川面に揺れ、少女は静かに微笑んだ。
등불이 강 위에 떠 있다.
"""


def test_pdf_text_holds_chinese_and_japanese(tmp_path: Path) -> None:
    from pypdf import PdfReader

    from illustrator.ebook import CJK_FONTS, find_fonts

    if not any(folder.is_dir() and any(folder.rglob(name)) for folder in FONT_FOLDERS for name in CJK_FONTS):
        pytest.skip("no CJK font installed (make fonts installs fonts-wqy-zenhei)")
    assert find_fonts(cjk=True)[1][0].name in CJK_FONTS  # the CJK font is tried first for what the body lacks
    manuscript = _illustrated(tmp_path, CJK_PASSAGE, split_into_beats(CJK_PASSAGE), title="灯笼 Lanterns")
    began = time.perf_counter()
    reader = PdfReader(export_manuscript(manuscript, tmp_path / "out", "pdf"))
    seconds = time.perf_counter() - began
    text = "".join(page.extract_text() for page in reader.pages).replace("\n", "").replace(" ", "")
    for line in (
        "灯笼在河上漂流，孩子们在桥上唱歌。",
        "提灯の明かりが川面に揺れ、少女は静かに微笑んだ。",
        "등불이강위에떠있다.",
    ):
        assert line in text
    assert "灯笼Lanterns" in text
    print(f"CJK PDF written in {seconds:.2f} s")


def test_pdf_with_cjk_text_and_no_cjk_font_says_what_to_install(tmp_path: Path) -> None:
    from illustrator.ebook import BODY_FONTS, find_fonts, write_pdf

    body = next(path for folder in FONT_FOLDERS if folder.is_dir() for path in folder.rglob(BODY_FONTS[0]))
    only_latin = tmp_path / "fonts"
    only_latin.mkdir()
    (only_latin / body.name).write_bytes(body.read_bytes())
    assert find_fonts([only_latin])[0].name == body.name  # Latin text still exports with this folder alone
    manuscript = _illustrated(tmp_path, CJK_PASSAGE, split_into_beats(CJK_PASSAGE))
    with pytest.raises(StorageError, match="apt-get install fonts-wqy-zenhei"):
        write_pdf(manuscript, tmp_path / "x.pdf", font_folders=[only_latin])


def test_zip_holds_every_format(tmp_path: Path) -> None:
    manuscript = _illustrated(tmp_path, POEM, split_into_beats(POEM))
    with zipfile.ZipFile(export_manuscript(manuscript, tmp_path / "out", "zip")) as archive:
        names = set(archive.namelist())
    assert {"the-keeper-the-sea/html/index.html", "the-keeper-the-sea/the-keeper-the-sea.epub"} <= names
    assert (
        "the-keeper-the-sea/the-keeper-the-sea.pdf" in names and "the-keeper-the-sea/html/images/picture-3.png" in names
    )
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.browser
def test_html_renders_in_chromium(tmp_path: Path, browser) -> None:  # noqa: F811
    manuscript = _illustrated(tmp_path, POEM, split_into_beats(POEM), size=256)
    page_path = export_manuscript(manuscript, tmp_path / "out", "html")
    page = browser.new_page(viewport={"width": 900, "height": 1400})
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "The Keeper <& the Sea>"
    widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [256, 256, 256]  # every relative image loaded
    assert "Style after Claude Monet" in page.locator("#credits").inner_text()
    page.screenshot(path=str(tmp_path / "manuscript.png"), full_page=True)


def test_a_long_passage_with_30_pictures_exports_in_seconds(tmp_path: Path) -> None:
    paragraph = (
        "Elena walked down to the harbour at dusk, where the fishing boats rocked against the quay and the gulls "
        "called over the water. She carried a lantern and a letter she had not yet opened, and she did not look back. "
    )
    passage = "\n\n".join(f"Chapter {n}\n\n" + paragraph * 3 for n in range(1, 31))
    assert 19_000 < len(passage) <= 20_000
    starts = [m.start() for m in re.finditer(r"Chapter \d+", passage)]
    beats = [describe_beat(passage, s, (starts + [len(passage)])[i + 1] - 2) for i, s in enumerate(starts)]
    manuscript = _illustrated(tmp_path, passage, beats, size=512)
    seconds = {}
    for fmt in ("html", "epub", "pdf", "zip"):
        began = time.perf_counter()
        export_manuscript(manuscript, tmp_path / "out", fmt)
        seconds[fmt] = time.perf_counter() - began
    print("export seconds (20,000 chars, 30 pictures of 512x512):", {k: round(v, 2) for k, v in seconds.items()})
    assert len(manuscript.illustrations) == 30
    assert max(seconds.values()) < 60  # generous on a busy shared CPU; measured figures are in docs/STORY.md
