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
