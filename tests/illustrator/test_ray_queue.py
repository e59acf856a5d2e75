"""The turn queue on the Ray backend: as many turns at once as there are replicas, each saved into its own session.

The real app over HTTP (gradio_client), drawing on the session's real local Ray cluster (2 replicas of the offline
preset). Whether two draws overlapped is read from the clock: when each draw's first step came back from its replica
and when its picture did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from gradio_client import Client
from PIL import Image

from illustrator.drawing import DrawingBackend
from illustrator.drawing.base import Preview, Progress
from illustrator.drawing.ray_backend import RayBackend
from illustrator.generator import GeneratedPicture, GenerationParams
from illustrator.loading import ModelDefaults
from illustrator.models import sheet_refiner
from illustrator.refiner import FallbackRefiner
from illustrator.settings import Settings
from storage.pngmeta import read_png_metadata
from tests.app.client import send, texts
from tests.app.conftest import free_port
from tests.illustrator.test_service import StaticModels

pytestmark = pytest.mark.ray


@dataclass(frozen=True)
class Span:
    """One draw on this machine's clock: its first step back from the replica, and its picture back."""

    prompt: str
    first_step: float
    done: float


class Clocked(DrawingBackend):
    """The real Ray backend, with the time each draw's steps started coming back and its picture came back."""

    def __init__(self, backend: RayBackend) -> None:
        self.backend = backend
        self.model_name = backend.model_name
        self.is_placeholder = backend.is_placeholder
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    @property
    def defaults(self) -> ModelDefaults:
        return self.backend.defaults

    def text_to_image(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        steps: list[float] = []

        def on_step(done: int, total: int) -> None:
            steps.append(time.monotonic())
            if progress is not None:
                progress(done, total)

        drawn = self.backend.text_to_image(params, progress=on_step, preview=preview, cancel=cancel)
        with self._lock:
            self.spans.append(Span(params.prompt, steps[0], time.monotonic()))
        return drawn

    def image_to_image(
        self,
        image: Image.Image,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        raise AssertionError("these tests draw new pictures only")


@contextmanager
def app_on(
    backend: DrawingBackend, data_dir: Path, *, turns_at_once: int | None = None, database_url: str | None = None
) -> Iterator[str]:
    """The real app on a free port, drawing on `backend` (already deployed on Ray, 2 replicas); yields its address."""
    from illustrator.wiring import wire
    from ui.server import launch

    config = Settings(
        data_dir=data_dir,
        database_url=database_url,
        offline=True,
        port=free_port(),
        backend="ray",
        ray_replicas=2,
        turns_at_once=turns_at_once,
    )
    models = StaticModels(config, backend, sheet_refiner(FallbackRefiner()))
    served = launch(wire(config, start_models=False, models=models), prevent_thread_lock=True, quiet=True)
    try:
        yield served.url
    finally:
        served.close()


def _both_replicas_running(timeout: float = 180) -> None:
    from ray import serve

    from illustrator.drawing.ray_backend import APP_NAME

    deadline = time.monotonic() + timeout
    while True:
        (deployment,) = serve.status().applications[APP_NAME].deployments.values()
        states = {getattr(state, "value", str(state)): n for state, n in deployment.replica_states.items()}
        running = states.get("RUNNING", 0)
        if running == 2:
            return
        assert time.monotonic() < deadline, f"the Ray deployment has {deployment.replica_states} replicas"
        time.sleep(0.5)


def _both_replicas_draw(backend: RayBackend, timeout: float = 180) -> None:
    """Wait until two draws sent at once are drawn at once (both replicas running and known to the handle's router)."""
    _both_replicas_running(timeout)
    params = GenerationParams("a pebble", "", seed=1, steps=30, guidance_scale=1.0, width=64, height=64)
    deadline = time.monotonic() + timeout
    while True:
        clocked = Clocked(backend)
        draws = [threading.Thread(target=clocked.text_to_image, args=(params,)) for _ in range(2)]
        for draw in draws:
            draw.start()
        for draw in draws:
            draw.join(timeout=120)
        first, second = sorted(clocked.spans, key=lambda span: span.first_step)
        if second.first_step < first.done:
            return
        assert time.monotonic() < deadline, "the two replicas never drew at once"


@pytest.mark.parametrize(("at_once", "overlap"), [(None, True), (1, False)], ids=["one-per-replica", "one-at-a-time"])
def test_two_writers_draw_at_once_on_two_replicas_each_into_their_own_session(
    ray_drawing: RayBackend, data_dir: Path, at_once: int | None, overlap: bool
) -> None:
    _both_replicas_draw(ray_drawing)  # an earlier test kills a replica: its successor may not be routed to yet
    clocked = Clocked(ray_drawing)
    animals = ("otter", "heron")
    with app_on(clocked, data_dir, turns_at_once=at_once) as url:
        clients = [Client(url, verbose=False) for _ in animals]
        answers: dict[str, tuple] = {}

        def write(client: Client, animal: str) -> None:
            answers[animal] = send(client, f"a {animal} by the river", steps=30)

        writers = [threading.Thread(target=write, args=pair) for pair in zip(clients, animals, strict=True)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=300)

    # each turn is in its own session: the chat, the stored messages and the picture's own metadata say so
    assert set(answers) == set(animals)
    sessions = {animal: answers[animal][3] for animal in animals}
    assert len(set(sessions.values())) == 2
    for animal, (chat, picture, _, session_id, _) in answers.items():
        other = next(a for a in animals if a != animal)
        shown = " ".join(texts(chat))
        assert f"a {animal} by the river" in shown and other not in shown
        meta = read_png_metadata(Path(picture))
        assert meta["illustrator"]["session_id"] == session_id and animal in meta["parameters"]

    # the two draws overlapped in time (two replicas drawing), or, one turn at a time, did not
    assert len(clocked.spans) == 2
    first, second = sorted(clocked.spans, key=lambda span: span.first_step)
    assert (second.first_step < first.done) is overlap, clocked.spans


@pytest.mark.postgres
def test_a_small_writing_group_on_ray_and_postgresql_loses_nothing(
    ray_drawing: RayBackend, data_dir: Path, postgres_server: str
) -> None:
    """The load test of docs/DEPLOY.md, bounded: 6 writers x 2 turns, 2 turns at once, PostgreSQL."""
    from benchmarks.load import Figures, count_misplaced, drive
    from tests.postgres import fresh_database

    figures = Figures(writers=6, turns_per_writer=2, replicas=2, turns_at_once=2)
    with fresh_database(postgres_server) as db_url, app_on(ray_drawing, data_dir, database_url=db_url) as url:
        sessions = drive(url, figures)
        misplaced = count_misplaced(db_url, sessions)
    summary = figures.summary()
    assert (summary["errors"], summary["http_500s"], summary["wrong_session_turns"], misplaced) == (0, 0, 0, 0), (
        figures.errors[:3]
    )
    assert summary["turns_done"] == 12 and len(set(sessions.values())) == 6
    assert 0 <= summary["wait_max_s"] <= summary["max_s"]
