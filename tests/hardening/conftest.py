"""Fixtures for the hardening tests: the real app on a free port, with the offline models built once per run."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from illustrator.settings import Settings
from tests.app.conftest import free_port

Start = Callable[..., tuple[str, Any]]


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline preset's two tiny models, built once and linked into every data folder (they are read-only)."""
    from illustrator.offline import build_offline_refiner_model
    from illustrator.offline_image import build_offline_image_model

    folder = tmp_path_factory.mktemp("shared-models")
    build_offline_image_model(folder / "offline-image")
    build_offline_refiner_model(folder / "offline-refiner")
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, shared_models: Path) -> Path:
    """A fresh data folder whose `models` folder is the shared, already built offline preset."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "models").symlink_to(shared_models, target_is_directory=True)
    return folder


@pytest.fixture
def start_app(data_dir: Path) -> Iterator[Start]:
    """Start the app in this process: `start(**settings)` -> (url, the wired Illustrator); stopped after the test."""
    from illustrator.wiring import wire
    from ui.server import launch

    running: list[Any] = []

    def start(**overrides: Any) -> tuple[str, Any]:
        # the built-in rules refine: the untrained offline LLM would spend seconds per turn on noise
        settings = Settings(data_dir=data_dir, offline=True, refiner_model="none", port=free_port())
        settings = replace(settings, **overrides)
        illustrator = wire(settings)
        illustrator.models.wait(timeout=120)
        running.append(launch(illustrator, prevent_thread_lock=True, quiet=True))
        return f"http://127.0.0.1:{settings.port}/", illustrator

    yield start
    for demo in running:
        demo.close()


def rows(data_dir: Path, sql: str, *params: Any) -> list[tuple]:
    """Rows straight from the database file, as another program would read them."""
    with sqlite3.connect(data_dir / "illustrator.db") as conn:
        return conn.execute(sql, params).fetchall()


def picture_files(data_dir: Path) -> list[Path]:
    """Every file under the pictures folder, temp files included."""
    root = data_dir / "pictures"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# The hardening figures, printed at the end of a run: how many hostile probes were tried, and what they found.
# A leak, a freeze or a lost turn fails its test; the line counts the failed tests of each kind.
PROBES: dict[str, int] = {}
KINDS = {
    "leaks": ("test_file_inputs", "test_hosts", "test_small_probes", "test_access", "test_logins"),
    "freezes": ("test_import_freeze", "test_many_writers"),
    "turns lost": ("test_data_safety", "test_crash", "test_faults"),
}


@pytest.fixture
def probes(request: pytest.FixtureRequest) -> Callable[[int], None]:
    """`probes(n)`: count n hostile probes tried by this test."""

    def tried(count: int = 1) -> None:
        PROBES[request.node.nodeid] = PROBES.get(request.node.nodeid, 0) + count

    return tried


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not PROBES:
        return
    failed = [report.nodeid for report in terminalreporter.stats.get("failed", [])]
    found = {kind: sum(any(f"/{m}.py" in n for m in modules) for n in failed) for kind, modules in KINDS.items()}
    terminalreporter.write_line(
        f"hardening figures: probes tried {sum(PROBES.values())}, leaks {found['leaks']}, "
        f"freezes {found['freezes']}, turns lost {found['turns lost']}"
    )
