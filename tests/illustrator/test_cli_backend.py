"""`illustrator serve --backend ray --ray-address ...` and ILLUSTRATOR_BACKEND become settings."""

from __future__ import annotations

import pytest

from illustrator.errors import InvalidInput
from ui.cli import build_parser, settings_from_args


def test_the_backend_options_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    args = [
        "serve",
        "--backend",
        "ray",
        "--ray-address",
        "ray://10.0.0.2:10001",
        "--ray-replicas",
        "2",
        "--ray-gpus",
        "1",
    ]
    settings = settings_from_args(build_parser().parse_args(args))
    assert (settings.backend, settings.ray_address, settings.ray_replicas, settings.ray_gpus_per_replica) == (
        "ray",
        "ray://10.0.0.2:10001",
        2,
        1.0,
    )
    assert settings_from_args(build_parser().parse_args(["serve"])).backend == "local"  # the default is unchanged

    monkeypatch.setenv("ILLUSTRATOR_BACKEND", "ray")
    from_env = settings_from_args(build_parser().parse_args(["serve"]))
    assert (from_env.backend, from_env.ray_address, from_env.ray_replicas) == ("ray", "auto", 1)
    monkeypatch.setenv("ILLUSTRATOR_BACKEND", "cloud")
    with pytest.raises(InvalidInput, match="local or ray"):
        settings_from_args(build_parser().parse_args(["serve"]))


def test_turns_run_one_per_replica_on_ray_and_one_at_a_time_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    def settings(*args: str):
        return settings_from_args(build_parser().parse_args(["serve", *args]))

    assert settings().turn_concurrency == 1  # the single-machine default is unchanged
    assert settings("--backend", "ray", "--ray-replicas", "3").turn_concurrency == 3
    assert settings("--backend", "ray", "--ray-replicas", "3", "--turns-at-once", "1").turn_concurrency == 1
    monkeypatch.setenv("ILLUSTRATOR_TURNS_AT_ONCE", "2")
    assert settings("--backend", "ray", "--ray-replicas", "4").turn_concurrency == 2
    with pytest.raises(InvalidInput, match="local backend draws one at a time"):
        settings()  # two at once asked of the local backend
    monkeypatch.setenv("ILLUSTRATOR_TURNS_AT_ONCE", "1")
    assert settings().turn_concurrency == 1
