"""Point 2 of issue 14: a picture's `parameters` text is read in linear time, capped, and never stalls the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from illustrator.library import MAX_PARAMETERS_CHARS
from storage.pngmeta import parse_parameters_text
from tests.app.client import assert_plain
from tests.hardening.conftest import Start

# Texts that made the old settings-line pattern backtrack: a long run of word characters with no colon, and
# near-misses on every shape the pattern knew (keys, quoted values, escapes).
HOSTILE = [
    lambda n: "a" * n,
    lambda n: "a b-c/" * (n // 6),
    lambda n: "a:" * (n // 2),
    lambda n: 'Steps: "' + '\\"' * (n // 2),
    lambda n: "k: v, " * (n // 6),
]


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024])
def test_parameters_text_is_read_in_linear_time(size: int, probes: Callable[[int], None]) -> None:
    for make in HOSTILE:
        probes(1)
        text = make(size)
        began = time.monotonic()
        parse_parameters_text(text)
        assert time.monotonic() - began < 2.0, (text[:20], size)
    # and the ordinary text still reads back
    values = parse_parameters_text('a fox\nSteps: 4, Sampler: "Euler, a", CFG scale: 7.5, Seed: 1, Size: 64x64')
    assert (values["prompt"], values["steps"], values["sampler"], values["guidance_scale"]) == (
        "a fox",
        4,
        "Euler, a",
        7.5,
    )


def _png(path: Path, parameters: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (64, 64), "navy").save(path, pnginfo=info)
    return path


def test_a_hostile_import_neither_freezes_the_server_nor_takes_long(
    start_app: Start, tmp_path: Path, probes: Callable[[int], None]
) -> None:
    url, _ = start_app()
    at_the_cap = "a" * (MAX_PARAMETERS_CHARS - 40) + "\nSteps: 4, Seed: 7, Size: 64x64"
    cases = [
        (_png(tmp_path / "cap.png", at_the_cap), None),
        (_png(tmp_path / "64k.png", "a" * 64 * 1024), "too long to import"),
        (_png(tmp_path / "10m.png", "a b" * (10 * 1024 * 1024 // 3)), "too long to import"),
    ]
    for path, refused in cases:
        probes(1)
        outcome: dict[str, object] = {}

        def work(path: Path = path, outcome: dict[str, object] = outcome) -> None:
            try:
                outcome["value"] = Client(url, verbose=False).predict(
                    handle_file(str(path)), api_name="/import_picture"
                )
            except Exception as e:  # gradio_client's AppError carries the writer's message
                outcome["error"] = str(e)

        began = time.monotonic()
        worker = threading.Thread(target=work)
        worker.start()
        slowest = 0.0
        while worker.is_alive() and time.monotonic() - began < 60:
            asked = time.monotonic()
            assert httpx.get(f"{url}config", timeout=10).status_code == 200
            slowest = max(slowest, time.monotonic() - asked)
            time.sleep(0.05)
        worker.join(timeout=1)
        took = time.monotonic() - began
        assert took < 6, f"{path.name} took {took:.1f} s"  # the upload included; the parse itself is milliseconds
        assert slowest < 1.5, f"the server stalled {slowest:.1f} s while {path.name} was read"
        if refused:
            assert refused in str(outcome.get("error")), outcome
            assert_plain(str(outcome["error"]))
        else:
            assert "value" in outcome, outcome
            prompt, _negative, seed, steps, size, _start = outcome["value"]  # type: ignore[misc]
            assert (len(prompt), seed, steps, size) == (MAX_PARAMETERS_CHARS - 40, 7, 4, "64x64")
