"""The picture at the machine's limit: the bf16 matmul peak, the UNet step's FLOPs and its achieved fraction of the
peak, and a second baseline: plain diffusers in an optimised recipe (bf16, channels-last, TAESD; bare draw)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.measure import memory_mb, release_memory, reset_peak_memory, timed
from benchmarks.phases import EDIT_PROMPT, EDIT_STEPS, EDIT_STRENGTH, PROMPT, Options, _memory_delta

logger = logging.getLogger(__name__)


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, options: Options, size: int = 4096) -> dict:
    """GFLOP/s of a square `size` x `size` matmul in `dtype`: what this machine's cores can do at best."""
    generator = torch.Generator("cpu").manual_seed(0)
    a = torch.randn((size, size), generator=generator).to(device, dtype)
    b = torch.randn((size, size), generator=generator).to(device, dtype)
    with torch.inference_mode():
        timing = timed(lambda: a @ b, repeats=max(options.repeats, 3), warmup=1, sync=device.type == "cuda")
    best = min(timing.runs)  # a peak: the best run, not the median
    return {
        **timing.to_dict(),
        "size": size,
        "dtype": str(dtype).removeprefix("torch."),
        "gflops": round(2 * size**3 / best / 1e9, 1),
        "gflops_median": round(2 * size**3 / timing.median / 1e9, 1),
    }


def count_unet_flops(unet: Any, latents: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor) -> int:
    """Floating-point operations of one UNet call, as torch's FLOP counter counts them (matmuls, convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        unet(latents, timestep, encoder_hidden_states=embeddings, return_dict=False)
    return int(counter.get_total_flops())


def unet_fraction(flops: int, step_s: float, peak_gflops: float) -> dict[str, float]:
    """The UNet step's achieved GFLOP/s and its fraction of the matmul peak."""
    achieved = flops / step_s / 1e9
    return {
        "unet_gflop_per_step": round(flops / 1e9, 1),
        "unet_gflops": round(achieved, 1),
        "unet_peak_fraction": round(achieved / peak_gflops, 3),
    }


def measure_optimised(folder: Path, device: torch.device, dtype: torch.dtype, size: int, options: Options) -> dict:
    """Plain diffusers in the best recipe we know, without our app: the same model in bf16 (fp16 on CUDA),
    channels-last, TAESD as its VAE, img2img by `from_pipe`; a bare draw (no refiner, no save)."""
    from diffusers import AutoencoderTiny, AutoPipelineForImage2Image, AutoPipelineForText2Image

    sync = device.type == "cuda"
    release_memory()
    reset_peak_memory()
    baseline = memory_mb()
    started = time.perf_counter()
    text_to_image = AutoPipelineForText2Image.from_pretrained(str(folder), dtype=dtype)
    text_to_image.vae = AutoencoderTiny.from_pretrained(str(folder / "taesd"), dtype=dtype)
    text_to_image.to(device)
    text_to_image.unet.to(memory_format=torch.channels_last)
    text_to_image.vae.to(memory_format=torch.channels_last)
    text_to_image.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - started
    pictures: list[Any] = []

    def draw() -> None:
        seed = torch.Generator("cpu").manual_seed(0)
        pictures.append(
            text_to_image(
                prompt=PROMPT, num_inference_steps=1, guidance_scale=0.0, width=size, height=size, generator=seed
            ).images[0]
        )

    with torch.inference_mode():
        txt2img = timed(draw, repeats=options.repeats, warmup=options.warmup, sync=sync)
        image_to_image = AutoPipelineForImage2Image.from_pipe(text_to_image)
        image_to_image.set_progress_bar_config(disable=True)
        start = pictures[0]

        def edit() -> None:
            image_to_image(
                prompt=EDIT_PROMPT,
                image=start,
                num_inference_steps=EDIT_STEPS,
                strength=EDIT_STRENGTH,
                guidance_scale=0.0,
            ).images[0]

        img2img = timed(edit, repeats=options.repeats, warmup=options.warmup, sync=sync)
    both = memory_mb()  # the caller releases the memory once the pipelines are out of scope
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "load_s": round(load_s, 2),
        "txt2img": txt2img.to_dict(),
        "img2img": img2img.to_dict(),
        "memory": _memory_delta(baseline, both=both),
    }
