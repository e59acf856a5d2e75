"""A1111 `parameters` text and our JSON chunk, through real PNG files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from illustrator.errors import InvalidInput
from storage.pngmeta import build_parameters_text, make_pnginfo, parse_parameters_text, read_png_metadata

PARAMS: dict[str, Any] = {
    "prompt": "a girl with red hair, holding a lantern, watercolor",
    "negative_prompt": "blurry, extra fingers",
    "steps": 1,
    "sampler": "Euler a",
    "guidance_scale": 0.0,
    "seed": 42,
    "width": 512,
    "height": 768,
    "model": "sd-turbo",
    "strength": 0.5,
}


def test_parameters_text_is_in_a1111_format() -> None:
    assert build_parameters_text(**PARAMS) == (
        "a girl with red hair, holding a lantern, watercolor\n"
        "Negative prompt: blurry, extra fingers\n"
        "Steps: 1, Sampler: Euler a, CFG scale: 0.0, Seed: 42, Size: 512x768, Model: sd-turbo, Denoising strength: 0.5"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"strength": None, "negative_prompt": ""},
        {"prompt": "line one\nline two: with a colon, and a comma", "negative_prompt": "a\nb"},
        {"model": "C:\\models\\dream, v2.safetensors", "sampler": 'DPM++ 2M "Karras"', "seed": 2**63 - 1},
        {"prompt": "café au lait, 桜の木の下の少女 🌸", "guidance_scale": 7.25},
    ],
)
def test_parameters_survive_a_real_png_file(tmp_path: Path, changes: dict[str, object]) -> None:
    params = {**PARAMS, **changes}
    ours = {"session_id": "ab" * 16, "action": "edit", "plan": {"reply": "Voilà — rouge!"}, "parent_id": 3}
    path = tmp_path / "picture.png"
    Image.new("RGB", (8, 8), "red").save(path, pnginfo=make_pnginfo(build_parameters_text(**params), ours))  # type: ignore[arg-type]

    meta = read_png_metadata(path)
    parsed = parse_parameters_text(meta["parameters"])
    assert {key: parsed[key] for key in params} == params
    assert parsed["extra"] == {}
    assert meta["illustrator"] == ours


def test_parse_reads_text_written_by_other_tools() -> None:
    parsed = parse_parameters_text(
        "masterpiece, castle\nNegative prompt: lowres\n"
        'Steps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 123, Size: 640x480, Model hash: abc123, Model: "a, b"'
    )
    assert parsed["prompt"] == "masterpiece, castle" and parsed["negative_prompt"] == "lowres"
    assert (parsed["steps"], parsed["guidance_scale"], parsed["width"], parsed["height"]) == (20, 7.0, 640, 480)
    assert parsed["model"] == "a, b" and parsed["extra"] == {"Model hash": "abc123"} and parsed["strength"] is None


@pytest.mark.parametrize("text", ["", "just a prompt, no settings", "Steps: many, Seed: x, Size: big", "\x00\n\n:::"])
def test_parse_never_raises_on_odd_text(text: str) -> None:
    parsed = parse_parameters_text(text)
    assert isinstance(parsed["prompt"], str) and parsed["seed"] is None


def test_reading_a_png_without_our_chunks_or_with_broken_json(tmp_path: Path) -> None:
    plain = io.BytesIO()
    Image.new("RGB", (4, 4)).save(plain, format="PNG")
    plain.seek(0)
    assert read_png_metadata(plain) == {"parameters": None, "illustrator": None}

    broken = PngInfo()
    broken.add_text("parameters", "a prompt")
    broken.add_itxt("illustrator", "{not json")
    path = tmp_path / "broken.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=broken)
    assert read_png_metadata(path) == {"parameters": "a prompt", "illustrator": None}

    not_png = tmp_path / "notes.txt"
    not_png.write_text("hello")
    with pytest.raises(InvalidInput):
        read_png_metadata(not_png)
