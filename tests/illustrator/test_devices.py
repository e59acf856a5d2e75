"""Choosing the device and dtype: CUDA, then MPS, then CPU; explicit settings win; bad names are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from illustrator.devices import choose_device_and_dtype, cpu_supports_bf16
from illustrator.errors import InvalidInput


def _choose(device: str = "auto", dtype: str = "auto", **probes: bool) -> tuple[torch.device, torch.dtype]:
    answers = {"cuda_available": False, "mps_available": False, "cpu_has_bf16": False, "cuda_has_bf16": False}
    answers.update(probes)
    return choose_device_and_dtype(device, dtype, **answers)


def test_cuda_comes_first_in_float16() -> None:
    assert _choose(cuda_available=True, mps_available=True, cpu_has_bf16=True) == (torch.device("cuda"), torch.float16)


def test_mps_comes_before_the_cpu() -> None:
    assert _choose(mps_available=True, cpu_has_bf16=True) == (torch.device("mps"), torch.float16)


def test_cpu_uses_bfloat16_only_where_the_cpu_computes_it() -> None:
    assert _choose(cpu_has_bf16=True) == (torch.device("cpu"), torch.bfloat16)
    assert _choose(cpu_has_bf16=False) == (torch.device("cpu"), torch.float32)


def test_probes_may_be_callables() -> None:
    chosen = choose_device_and_dtype(
        cuda_available=lambda: False, mps_available=lambda: False, cpu_has_bf16=lambda: True
    )
    assert chosen == (torch.device("cpu"), torch.bfloat16)


def test_explicit_settings_override_the_automatic_choice() -> None:
    assert _choose("cpu", cuda_available=True) == (torch.device("cpu"), torch.float32)
    assert _choose("cpu", "float32", cpu_has_bf16=True) == (torch.device("cpu"), torch.float32)
    assert _choose("auto", "bfloat16") == (torch.device("cpu"), torch.bfloat16)
    assert _choose("cuda:1", cuda_available=True) == (torch.device("cuda", 1), torch.float16)
    assert _choose(" CPU ", "FP32") == (torch.device("cpu"), torch.float32)


def test_cuda_bfloat16_when_asked_and_the_card_supports_it() -> None:
    assert _choose(dtype="bfloat16", cuda_available=True, cuda_has_bf16=True)[1] == torch.bfloat16
    assert _choose(dtype="bfloat16", cuda_available=True, cuda_has_bf16=False)[1] == torch.float16


@pytest.mark.parametrize(
    ("device", "dtype", "argument"),
    [("gpu", "auto", "device"), ("cuda:x", "auto", "device"), ("cpu", "float64", "dtype"), ("cpu", "", "dtype")],
)
def test_invalid_names_are_refused_naming_the_argument(device: str, dtype: str, argument: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{argument} must be"):
        _choose(device, dtype)


def test_an_accelerator_that_is_not_there_is_refused() -> None:
    with pytest.raises(InvalidInput, match="device 'cuda'.*no CUDA"):
        _choose("cuda")
    with pytest.raises(InvalidInput, match="device 'mps'.*not available"):
        _choose("mps")


def test_cpu_bf16_support_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_amx = tmp_path / "amx"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n")
    with_avx512_bf16 = tmp_path / "avx512"
    with_avx512_bf16.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    without = tmp_path / "plain"
    without.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_supports_bf16(with_amx)
    assert cpu_supports_bf16(with_avx512_bf16)
    assert not cpu_supports_bf16(without)
    assert not cpu_supports_bf16(tmp_path / "missing")
