"""Fixtures that launch the real app on a free local port."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from illustrator.settings import Settings

ServeFn = Callable[[], str]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve(data_dir: Path) -> Iterator[ServeFn]:
    """Start the app (offline preset, its own data folder); call again to restart it on the same data."""
    from illustrator.wiring import wire
    from ui.server import Served, launch

    running: list[Served] = []

    def start() -> str:
        for served in running:
            served.close()
        running.clear()
        settings = Settings(data_dir=data_dir, offline=True, port=free_port())
        illustrator = wire(settings)
        illustrator.models.wait(timeout=120)
        running.append(launch(illustrator, prevent_thread_lock=True, quiet=True))
        return f"http://127.0.0.1:{settings.port}/"

    yield start
    for served in running:
        served.close()
