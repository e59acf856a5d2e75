"""The lineage tree and the comparison of two pictures, as pure functions of a session's pictures."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from illustrator.service import PictureView
from ui.lineage import compare_markdown, prompt_difference, sheet_difference, tree_html, tree_rows


def pic(
    id: int, parent: int | None = None, prompt: str = "a fox", action: str = "edit", sheet: dict[str, Any] | None = None
) -> PictureView:
    return PictureView(
        id=id, session_id="s" * 32, file_name=f"{id}.png", path=Path(f"/nowhere/{id}.png"), turn=id, prompt=prompt,
        negative_prompt="", action=action if parent else "new", strength=0.5 if parent else None, seed=id, steps=2,
        guidance_scale=0.0, width=64, height=64, model="tiny", parent_id=parent,
        created_at=datetime(2026, 12, 2, tzinfo=timezone.utc), sheet=sheet, number=id, parent_number=parent,
    )  # fmt: skip


def shape(rows: list[Any]) -> list[tuple[int, int, int, bool]]:
    return [(r.picture.id, r.depth, r.children, r.branch_start) for r in rows]


def test_a_chain_of_edits_stays_flat_and_a_branch_is_indented() -> None:
    # 1 -> 2 -> 3, then back to 2: 2 -> 5 -> 6; a new picture 4 starts its own tree
    pictures = [pic(1), pic(2, 1), pic(3, 2), pic(4), pic(5, 2), pic(6, 5)]
    rows = tree_rows(list(reversed(pictures)))  # order given does not matter
    assert shape(rows) == [
        (1, 0, 1, False),
        (2, 0, 2, False),  # the branch: two children
        (3, 1, 0, True),
        (5, 1, 1, True),
        (6, 1, 0, False),  # the chain goes on at its branch's depth
        (4, 0, 0, False),
    ]


def test_a_picture_whose_parent_is_gone_starts_a_tree() -> None:
    assert shape(tree_rows([pic(7, 3), pic(8, 7)])) == [(7, 0, 1, False), (8, 0, 0, False)]


def test_a_long_story_is_not_limited_by_recursion() -> None:
    pictures = [pic(1)] + [pic(i, i - 1) for i in range(2, 3001)]
    rows = tree_rows(pictures)
    assert len(rows) == 3000 and {r.depth for r in rows} == {0}


def test_the_html_marks_the_current_picture_and_the_branches_and_escapes_the_prompt() -> None:
    pictures = [pic(1, prompt="<img src=x onerror=alert(1)> a 'fox'"), pic(2, 1), pic(3, 1)]
    page = tree_html(tree_rows(pictures), current_id=3)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "title='&lt;img src=x onerror=alert(1)&gt; a &#x27;fox&#x27;'" in page  # the attribute cannot be closed
    assert page.count("data-picture=") == 3
    assert "▼ 2 branches" in page
    current = page.split("data-picture='3'")[0].rsplit("<button", 1)[1]
    assert "current" in current and page.count("class='lineage-node current'") == 1
    assert "next message goes on from here" in page.split("data-picture='3'")[1]
    assert "margin-left: 18px" in page.split("data-picture='2'")[1].split(">")[0]


def test_an_empty_session_says_where_the_tree_appears() -> None:
    assert "appear here" in tree_html([], None)


def test_compare_shows_both_prompts_the_words_changed_and_the_sheet_difference() -> None:
    old = {"cast": [{"key": "fox", "name": "fox", "kind": "fox", "attributes": {"fur": {"text": "red fur"}}}]}
    old |= {"visible": ["fox"], "focus": "fox", "scene": {}}
    new = {**old, "cast": [{"key": "fox", "name": "fox", "kind": "fox", "attributes": {"fur": {"text": "blue fur"}}}]}
    a = pic(1, prompt="a fox with red fur in the snow", sheet=old)
    b = pic(2, 1, prompt="a fox with blue fur in the snow <b>", sheet=new)
    text = compare_markdown(a, b)
    assert "| | #1 | #2 |" in text and "| action | new | edit 0.50 |" in text and "| from | — | #1 |" in text
    assert "**#1 prompt:** a fox with red fur in the snow" in text
    assert "− red · + blue … &lt;b&gt;" in text
    assert "fur: red → blue" in text
    assert "<b>" not in text


def test_the_same_prompt_and_pictures_without_sheets() -> None:
    assert prompt_difference("a fox", "a  fox") == "the same"
    assert sheet_difference(None, {"cast": []}) == []
    assert sheet_difference({"cast": "nonsense"}, {"cast": []}) == []


def test_the_candidates_of_a_turn_are_marked() -> None:
    pictures = [pic(1), replace(pic(2), turn=1), pic(3, 1), replace(pic(4, 1), turn=3), pic(5, 1)]
    rows = tree_rows(pictures)
    assert [(r.picture.id, r.candidates) for r in rows] == [(1, 2), (3, 2), (4, 2), (5, 1), (2, 2)]
    assert tree_html(rows, None).count("(one of 2 candidates)") == 4
