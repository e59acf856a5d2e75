"""Many writers at once: each browser sees only its own conversation and pictures; browsing stays quick; a full
queue is told so at once."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gradio_client import Client

from tests.app.client import assert_plain, pictures, send, texts
from tests.hardening.conftest import Start, rows

ANIMALS = ["otter", "heron", "badger", "lynx", "walrus", "ibis", "marmot", "gecko", "tapir", "okapi", "quokka"]


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_eleven_writers_at_once_each_see_only_their_own(start_app: Start, data_dir: Path) -> None:
    url, _ = start_app()
    clients = [Client(url, verbose=False) for _ in ANIMALS]
    latencies: list[float] = []
    writing = threading.Event()

    def browse() -> None:
        browser = Client(url, verbose=False)
        writing.wait()
        while writing.is_set():
            started = time.perf_counter()
            browser.predict(api_name="/list_sessions")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)

    def write(client: Client, animal: str) -> list[tuple]:
        return [send(client, f"a {animal} by the river"), send(client, f"make the {animal} wear a tiny hat")]

    with ThreadPoolExecutor(len(ANIMALS) + 1) as pool:
        browsing = pool.submit(browse)
        writers = [pool.submit(write, client, animal) for client, animal in zip(clients, ANIMALS, strict=True)]
        writing.set()
        turns = [writer.result(timeout=300) for writer in writers]
        writing.clear()
        browsing.result(timeout=30)

    session_ids = set()
    for animal, (first, second) in zip(ANIMALS, turns, strict=True):
        chat, picture, details, session_id, _ = second
        assert first[3] == session_id  # both turns in the writer's own session
        session_ids.add(session_id)
        shown = " ".join(texts(chat)).lower()
        assert animal in shown and not [other for other in ANIMALS if other != animal and other in shown]
        assert len(pictures(chat)) == 2
        # The picture shown is this session's own latest picture, byte for byte, and the first turn's too.
        stored = rows(data_dir, "SELECT sha256 FROM pictures WHERE session_id = ? ORDER BY id", session_id)
        assert [_sha256(first[1]), _sha256(picture)] == [sha for (sha,) in stored]
        contents = rows(data_dir, "SELECT content FROM messages WHERE session_id = ? AND role = 'user'", session_id)
        assert [c for (c,) in contents] == [f"a {animal} by the river", f"make the {animal} wear a tiny hat"]
    assert len(session_ids) == len(ANIMALS)
    assert rows(data_dir, "SELECT count(*) FROM pictures")[0][0] == 2 * len(ANIMALS)

    # Browsing the session list stayed quick while 22 pictures were drawn one after another.
    assert len(latencies) >= 5
    latencies.sort()
    print(
        f"session list while drawing: {len(latencies)} calls, median {latencies[len(latencies) // 2]:.3f} s, "
        f"slowest {latencies[-1]:.3f} s"
    )
    # generous bounds: a busy queue must not stall browsing (a stalled list would take the whole turn time)
    assert latencies[len(latencies) // 2] < 2.0 and latencies[-1] < 10.0


def test_a_full_queue_is_told_so_at_once(start_app: Start, data_dir: Path) -> None:
    url, _ = start_app(queue_size=1)
    drawing, waiting, late = (Client(url, verbose=False) for _ in range(3))

    # One long turn draws, one waits in the queue (its size is 1): a third is turned away at once.
    long_turn = drawing.submit(text="a cathedral, every stone", steps=50, size="1024x1024", api_name="/send")
    deadline = time.monotonic() + 60
    while not rows(data_dir, "SELECT count(*) FROM messages")[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    queued = waiting.submit(text="a small chapel", api_name="/send")
    time.sleep(0.5)

    started = time.perf_counter()
    try:
        send(late, "a bell tower")
    except Exception as e:  # gradio_client's QueueError
        message, seconds = str(e), time.perf_counter() - started
    else:
        raise AssertionError("the third turn was not turned away")
    assert seconds < 5 and "Queue is full" in message, (seconds, message)
    assert_plain(message)
    # What the page's own script receives: HTTP 503 with one sentence (the page shows "This application is
    # currently busy. Please try again.").
    config = httpx.get(f"{url}config", timeout=10).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "send")
    answer = httpx.post(
        f"{url}gradio_api/queue/join",
        json={
            "data": ["a bell tower", "auto", 0, -1, 0, "auto", "", "", None],
            "fn_index": fn_index,
            "session_hash": "x1",
        },
        timeout=10,
    )
    assert answer.status_code == 503 and "Queue is full" in answer.json()["detail"]

    # No way around the queue: a direct call of the turn is refused.
    direct = httpx.post(f"{url}gradio_api/run/send", json={"data": ["a bell tower"], "session_hash": "x2"})
    assert direct.status_code == 404 and "join the queue" in direct.text

    # Stop skips the queue (the page posts it directly): the long turn stops, the queued one is drawn, and the
    # app takes new turns again.
    stop = httpx.post(
        f"{url}gradio_api/run/cancel", json={"data": [None], "session_hash": drawing.session_hash}, timeout=10
    )
    assert stop.status_code == 200, stop.text
    assert len(pictures(queued.result(timeout=120)[0])) == 1
    chat, *_ = send(late, "a bell tower")
    assert len(pictures(chat)) == 1
    assert long_turn.done()
    assert [m for (m,) in rows(data_dir, "SELECT content FROM messages WHERE role = 'user' ORDER BY id")] == [
        "a cathedral, every stone",
        "a small chapel",
        "a bell tower",
    ]
