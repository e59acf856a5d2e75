"""Point 1 of issue 14: an event's input can name a file, and the server must never read one it did not upload."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from gradio_client import Client, handle_file
from PIL import Image

from tests.app.client import send
from tests.hardening.conftest import Start
from tests.hardening.probes import FILE_META, endpoint, input_position, queue_call


def _cache_files() -> set[Path]:
    root = Path(os.environ["GRADIO_TEMP_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_no_event_input_can_name_a_file_on_the_server(
    start_app: Start, data_dir: Path, tmp_path: Path, probes: Callable[[int], None]
) -> None:
    url, _ = start_app()
    send(Client(url, verbose=False), "a lighthouse on a cliff")  # the database now holds a turn worth stealing
    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), "red").save(secret)  # a real picture outside the upload folder: still not uploaded
    targets = ["/etc/passwd", str(data_dir / "illustrator.db"), "/proc/self/environ", str(secret), "/dev/zero"]
    send_index, send_inputs = endpoint(url, "send")
    start = input_position(url, "send", "Your own starting picture (optional)")
    import_index, _ = endpoint(url, "import_picture")
    before = _cache_files()
    tried = 0
    for target in targets:
        for fn_index, data, position in ((send_index, send_inputs, start), (import_index, [None], 0)):
            data = list(data)
            if fn_index == send_index:
                data[0] = "a red door"
            data[position] = {"path": target, "orig_name": "x.png", "meta": FILE_META}
            began = time.monotonic()
            answer = queue_call(url, fn_index, data)
            tried += 1
            probes(1)
            assert answer.get("success") is not True, (target, answer)
            assert time.monotonic() - began < 10, f"{target} held the server"
            assert _cache_files() == before, f"{target} was copied into Gradio's cache"
            assert httpx.get(f"{url}config", timeout=3).status_code == 200  # still answering

    # A file the page uploads itself is still read: the guard refuses only what Gradio did not upload.
    chat, *_ = send(Client(url, verbose=False), "the same door, at night", start=handle_file(str(secret)))
    assert chat
    assert tried == 10
