"""int8 quantisation (opt-in, torchao): the setting reaches the loader, and the model's linear layers become int8."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from illustrator.errors import ModelUnavailable
from illustrator.quantization import parameter_bytes, quantize
from ui.cli import build_parser, settings_from_args


def test_the_quantize_flag_becomes_a_setting_and_is_off_by_default(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path)])
    assert settings_from_args(args).quantize == "none"
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), "--quantize", "int8"])
    assert settings_from_args(args).quantize == "int8"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--quantize", "int4"])


def test_int8_makes_linear_weights_int8_and_keeps_the_output_close() -> None:
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 64)).eval()
    inputs = torch.randn(8, 256)
    expected = model(inputs).detach()
    before = parameter_bytes(model)
    assert quantize(model, "none") is model and parameter_bytes(model) == before
    quantize(model, "int8")
    assert parameter_bytes(model) < before / 2  # int8 weights and their scales, instead of float32
    with torch.inference_mode():
        error = (model(inputs) - expected).abs().max() / expected.abs().max()
    assert error < 0.05
    with pytest.raises(ModelUnavailable, match="quantisation must be one of"):
        quantize(model, "int4")
