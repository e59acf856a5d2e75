"""Test data for storage tests."""

from __future__ import annotations

from typing import Any


def picture_fields(**overrides: Any) -> dict[str, Any]:
    """Plausible fields of one picture row."""
    fields: dict[str, Any] = {
        "file_name": "2025/01/" + "a" * 32 + ".png",
        "width": 512,
        "height": 512,
        "size_bytes": 1234,
        "sha256": "0" * 64,
        "seed": 2**40 + 7,
        "steps": 2,
        "guidance_scale": 0.0,
        "action": "new",
        "model": "stabilityai/sd-turbo",
        "prompt": "a girl with black hair, watercolor",
        "negative_prompt": "blurry",
    }
    fields.update(overrides)
    return fields
