"""The page's turn events share one queue: one turn at a time locally (unchanged), one per replica on Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from illustrator.settings import Settings


def _gpu_limits(settings: Settings) -> set[int | None]:
    from illustrator.wiring import wire
    from ui.page import build_ui

    demo = build_ui(wire(settings, start_models=False))  # the page only: no model is loaded, nothing is served
    limits = {fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "gpu"}
    demo.close()
    return limits


@pytest.mark.parametrize(
    ("backend", "replicas", "at_once", "limit"),
    [("local", 1, None, 1), ("ray", 3, None, 3), ("ray", 3, 1, 1)],
    ids=["local", "ray-one-per-replica", "ray-one-at-a-time"],
)
def test_the_turn_queue_runs_as_many_turns_at_once_as_the_backend_can_draw(
    data_dir: Path, backend: str, replicas: int, at_once: int | None, limit: int
) -> None:
    settings = Settings(data_dir=data_dir, offline=True, backend=backend, ray_replicas=replicas, turns_at_once=at_once)
    assert _gpu_limits(settings) == {limit}
