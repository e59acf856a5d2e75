"""Faults in a turn (a full disk, no permission, out of memory, a bug): one plain sentence, and the next turn works."""

from __future__ import annotations

import errno
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from gradio_client import Client

import illustrator.wiring
import storage.files
from illustrator.generator import GeneratedPicture, GenerationParams, Generator
from illustrator.models import ModelManager
from illustrator.plan import ChatMessage, Plan, RefinerState
from illustrator.refiner import FallbackRefiner, Refiner
from tests.app.client import TRACE_SIGNS, assert_plain, pictures, refusal, send
from tests.hardening.conftest import Start, picture_files, rows
from ui.errors import UNEXPECTED


def _state(data_dir: Path) -> tuple[list[str], int, list[Path]]:
    """(the writer's messages, picture rows, picture files) as they are on disk."""
    messages = [m for (m,) in rows(data_dir, "SELECT content FROM messages WHERE role = 'user' ORDER BY id")]
    return messages, rows(data_dir, "SELECT count(*) FROM pictures")[0][0], picture_files(data_dir)


class _FullDisk(io.FileIO):
    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def _full_disk(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    return _FullDisk(path, mode.replace("b", ""))  # the temp file is created, then writing it fails


def _no_permission(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    raise PermissionError(errno.EACCES, "Permission denied", str(path))


def test_a_full_disk_or_no_permission_while_saving(start_app: Start, data_dir: Path, monkeypatch) -> None:
    url, _ = start_app()
    client = Client(url, verbose=False)
    send(client, "a castle on a hill")

    year = data_dir / "pictures" / f"{datetime.now(timezone.utc):%Y}"
    moved = year.with_name("moved")

    def block_the_folder(patch: pytest.MonkeyPatch) -> None:
        year.rename(moved)
        year.write_text("a file where the year's folder should be")  # blocks even root, unlike chmod

    faults = {
        "the disk is full; free some space": lambda m: m.setattr(storage.files, "open", _full_disk, False),
        "may not write in the pictures folder": lambda m: m.setattr(storage.files, "open", _no_permission, False),
        "not a folder is in the way": block_the_folder,
    }
    for number, (expected, cause) in enumerate(faults.items()):
        _, pictures_before, files_before = _state(data_dir)
        with monkeypatch.context() as patch:
            cause(patch)
            message = refusal(client, f"make the sky red, take {number}", action="new")
        assert message.startswith("Could not save the picture: ") and expected in message, message
        assert_plain(message)
        if year.is_file():  # the writer moves the blocking file away
            year.unlink()
            moved.rename(year)
        messages, pictures_after, files_after = _state(data_dir)
        assert messages[-1] == f"make the sky red, take {number}"  # the writer's message is kept
        assert (pictures_after, files_after) == (pictures_before, files_before)  # no half-saved picture, no temp file
        chat, picture, *_ = send(client, f"make the sky green, take {number}")
        assert Path(picture).is_file()
        assert _state(data_dir)[1] == pictures_before + 1
    assert rows(data_dir, "PRAGMA integrity_check") == [("ok",)]


class _OutOfMemoryTwice(Generator):
    """The real tiny generator, except that its first two pictures run out of memory (GPU, then CPU wording)."""

    def __init__(self, real: Generator) -> None:
        super().__init__(
            real.pipelines,
            model_name=real.model_name,
            is_placeholder=real.is_placeholder,
            device=real.device,
            dtype=real.dtype,
        )
        self.failures: list[BaseException] = [
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
            RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: 4 GB"),
        ]

    def text_to_image(self, params: GenerationParams, **kwargs: Any) -> GeneratedPicture:
        if self.failures:
            raise self.failures.pop(0)
        return super().text_to_image(params, **kwargs)


class _OutOfMemoryModels(ModelManager):
    _wrapped: Generator | None = None

    def generator(self) -> Generator:
        if self._wrapped is None:
            self._wrapped = _OutOfMemoryTwice(super().generator())
        return self._wrapped


def test_out_of_memory_gives_a_plain_message_and_the_next_turn_works(
    start_app: Start, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(illustrator.wiring, "ModelManager", _OutOfMemoryModels)
    url, _ = start_app()
    client = Client(url, verbose=False)
    for attempt in ("a whale in the sky", "a whale in the sky, again"):
        message = refusal(client, attempt)
        assert "ran out of memory" in message and "smaller size" in message, message
        assert_plain(message)
    assert _state(data_dir)[1:] == (0, [])
    chat, picture, *_ = send(client, "a whale in the sky, once more")
    assert len(pictures(chat)) == 1 and Path(picture).is_file()
    assert _state(data_dir)[0] == ["a whale in the sky", "a whale in the sky, again", "a whale in the sky, once more"]


class _BuggyTwice(Refiner):
    """A refiner with a bug that shows twice: an exception nobody planned for, with a path in its message."""

    name = "buggy"

    def __init__(self) -> None:
        self.failures = 2

    def refine(self, conversation: list[ChatMessage], state: RefinerState) -> Plan:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise KeyError("/srv/secret/illustrator/refiner.py line 42")
        return FallbackRefiner().refine(conversation, state)


class _BuggyModels(ModelManager):
    _buggy = _BuggyTwice()

    def refiner(self) -> Refiner:
        return self._buggy


SEND_DEFAULTS = ["auto", 0, -1, 0, "auto", "", "", None]  # the controls, as the page sends them


def _event_stream(url: str, data: list[Any]) -> str:
    """What a browser reads while a turn runs: the whole server-sent event stream of one call."""
    joined = httpx.post(f"{url}gradio_api/call/send", json={"data": data}, timeout=30)
    if joined.status_code != 200:
        return joined.text
    return httpx.get(f"{url}gradio_api/call/send/{joined.json()['event_id']}", timeout=60).text


def test_stack_traces_never_reach_the_browser(start_app: Start, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(illustrator.wiring, "ModelManager", _BuggyModels)
    url, _ = start_app()
    client = Client(url, verbose=False)

    # 1. a bug: one generic sentence, nothing about the exception, in the raw stream and in the client
    stream = _event_stream(url, ["a knight in silver armour", *SEND_DEFAULTS])
    assert "event: error" in stream and TRACE_SIGNS.search(stream) is None and "secret" not in stream, stream
    assert refusal(client, "a knight in silver armour") == UNEXPECTED
    # a payload Gradio cannot use, and a route that does not exist: no trace either
    for answer in (
        _event_stream(url, [{"not": "text"}, "sideways", "x", None, [], 7, 8, 9, 10, 11]),
        httpx.get(f"{url}gradio_api/no-such-route", timeout=30).text,
    ):
        assert TRACE_SIGNS.search(answer) is None, answer[:500]

    # 2. the picture to edit is damaged on disk: a plain sentence that says how to go on, and going on works
    send(client, "a knight in silver armour")
    (file_name,) = rows(data_dir, "SELECT file_name FROM pictures ORDER BY id DESC LIMIT 1")[0]
    damaged = data_dir / "pictures" / file_name
    damaged.write_bytes(damaged.read_bytes()[:200])
    message = refusal(client, "make his armour gold", action="edit")
    assert "damaged or missing" in message and "New picture" in message, message
    assert_plain(message)
    chat, picture, details, *_ = send(client, "make his armour gold", action="new")
    assert Path(picture).is_file() and "· new ·" in details
    (plan_json,) = rows(data_dir, "SELECT plan_json FROM messages ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(plan_json)["action"] == "new"
