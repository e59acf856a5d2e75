"""A hub model that is neither cached nor reachable is reported at once, not after half a minute of retries."""

from __future__ import annotations

import time

import pytest

from illustrator import hub
from illustrator.errors import ModelUnavailable
from illustrator.loading import load_image_pipeline
from illustrator.refiner_loading import load_refiner


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode, but the hub endpoint is a closed local port (nothing leaves this machine)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


def test_an_unreachable_hub_is_reported_quickly(unreachable_hub: None) -> None:
    started = time.perf_counter()
    with pytest.raises(hub.HubUnreachable, match="cannot be reached"):
        hub.ensure_available("stabilityai/sd-turbo", "model_index.json")
    assert time.perf_counter() - started < 5


def test_offline_mode_is_reported_without_trying(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubUnreachable, match="offline"):
        hub.ensure_available("stabilityai/sd-turbo", "model_index.json")


def test_loaders_give_one_plain_sentence(unreachable_hub: None) -> None:
    import torch

    with pytest.raises(ModelUnavailable, match="cannot be reached") as image_error:
        load_image_pipeline("stabilityai/sd-turbo", device=torch.device("cpu"), dtype=torch.float32)
    with pytest.raises(ModelUnavailable, match="cannot be reached") as refiner_error:
        load_refiner("Qwen/Qwen2.5-0.5B-Instruct")
    for error in (image_error.value, refiner_error.value):
        assert "\n" not in str(error) and "Traceback" not in str(error)
