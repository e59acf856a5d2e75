"""Credit where it is due: artists named in wishes and prompts, carried by the picture's record, file and pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from illustrator.credits import GENERAL_OUTPUT, artists_in, credit_line
from illustrator.export import storyboard_html
from storage.pngmeta import parse_parameters_text, read_png_metadata, with_artists
from tests.illustrator.test_cli import run_cli
from tests.illustrator.test_service import ScriptedRefiner, library_for, make_service, plan


@pytest.mark.parametrize(
    ("text", "artists"),
    [
        ("a harbour at dusk in the style of Claude Monet", ["Claude Monet"]),
        ("a harbour, at dusk in the style of claude monet, detailed illustration", ["Claude Monet"]),  # the rules lower
        ("a desert city like Moebius", ["Moebius"]),
        ("a poster of a dancer by Alphonse Mucha", ["Alphonse Mucha"]),
        ("a Ghibli-style forest with a cat bus", ["Studio Ghibli"]),
        (
            "in the style of Monet and Degas, with Rembrandt lighting",
            ["Claude Monet", "Edgar Degas", "Rembrandt van Rijn"],
        ),
        (
            "waves in the style of Hokusai, Hiroshige or Kuniyoshi",
            ["Katsushika Hokusai", "Utagawa Hiroshige", "Utagawa Kuniyoshi"],
        ),
        ("a portrait in the style of Jane Hale", ["Jane Hale"]),  # not on the list, but plainly a person
        ("Van Gogh's starry night over a village", ["Vincent van Gogh"]),
    ],
)
def test_named_artists_are_found(text: str, artists: list[str]) -> None:
    assert artists_in(text) == artists


@pytest.mark.parametrize(
    "text",
    [
        "a girl named Raphael in a rose garden",  # a one-word name without a style cue is a character
        "by the sea at sunrise, in the style of Art Nouveau",  # a movement is not a person
        "a knight by the fire, like a painting",
        "",
    ],
)
def test_no_artist_is_credited_by_accident(text: str) -> None:
    assert artists_in(text) == []


def test_credit_lines() -> None:
    assert credit_line([]) == GENERAL_OUTPUT == "General model output"
    assert credit_line(["Claude Monet"]) == "Style after Claude Monet"
    assert (
        credit_line(["Claude Monet", "Edgar Degas", "Moebius"]) == "Style after Claude Monet, Edgar Degas and Moebius"
    )


def test_the_parameters_text_carries_the_credit_and_reads_back() -> None:
    text = with_artists(
        "a harbour\nSteps: 1, Sampler: x, CFG scale: 0.0, Seed: 3, Size: 64x64, Model: m", ["Claude Monet"]
    )
    assert text.endswith("Style after: Claude Monet")
    assert parse_parameters_text(text)["artists"] == ["Claude Monet"]
    two = parse_parameters_text(with_artists(text.rsplit(",", 1)[0], ["Claude Monet", "Moebius"]))
    assert two["artists"] == ["Claude Monet", "Moebius"] and two["seed"] == 3


def test_a_turn_in_an_artists_style_is_credited_everywhere(data_dir: Path, offline_generator) -> None:
    refiner = ScriptedRefiner(plan("a harbour at dusk in the style of Claude Monet"), plan("a lighthouse on a cliff"))
    service, _ = make_service(data_dir, offline_generator, refiner)

    monet = service.send(None, "a harbour at dusk in the style of Claude Monet")
    assert monet.picture.artists == ("Claude Monet",)
    assert "Style after Claude Monet" in monet.reply.content  # the chat reply
    meta = read_png_metadata(monet.picture.path)
    assert meta["illustrator"]["artists"] == ["Claude Monet"]
    assert meta["illustrator"]["credit"] == "Style after Claude Monet"
    assert parse_parameters_text(meta["parameters"])["artists"] == ["Claude Monet"]
    assert "Claude Monet" not in meta["illustrator"]["plan"].get("artists", [])  # the plan is not where it lives

    plain = service.send(monet.session_id, "now a lighthouse on a cliff")
    assert plain.picture.artists == () and "Style after" not in plain.reply.content
    assert "Style after" not in read_png_metadata(plain.picture.path)["parameters"]

    library = library_for(service, data_dir)
    view = library.open_session(monet.session_id)  # read back from the database
    assert [p.artists for p in (library.get_picture(monet.picture.id), library.get_picture(plain.picture.id))] == [
        ("Claude Monet",),
        (),
    ]
    page = storyboard_html(view, lambda p: f"{p.id}.png")  # the share page and the storyboard export
    assert "Style after Claude Monet" in page and GENERAL_OUTPUT in page


def test_generate_writes_the_credit_into_the_png(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.png"
    result = run_cli("generate", "a harbour at dusk in the style of Claude Monet", "-o", str(out), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    meta = read_png_metadata(out)
    assert meta["illustrator"]["artists"] == ["Claude Monet"]
    assert "Style after: Claude Monet" in meta["parameters"]
