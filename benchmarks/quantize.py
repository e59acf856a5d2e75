"""int8 on the UNet and the text encoder (torchao): speed, memory and the change in the picture (PSNR against the
bf16 picture of the same seed). Runs last: it quantises the loaded models in place."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from benchmarks.measure import memory_mb, release_memory, timed
from benchmarks.phases import PROMPT, Options

logger = logging.getLogger(__name__)


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio of two 8-bit pictures (dB; inf when identical)."""
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((first - second) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def measure_int8(generator: Any, options: Options, mode: str = "int8") -> dict[str, Any]:
    """The UNet step, text encoding and the picture before and after quantising (UNet, then the text encoder too)."""
    from illustrator.quantization import parameter_bytes, quantize

    pipeline = generator.pipelines.text_to_image
    device, dtype = generator.device, generator.dtype
    width, height = generator.defaults.width, generator.defaults.height
    repeats, warmup = options.repeats, options.warmup

    def picture() -> Any:
        seed = torch.Generator("cpu").manual_seed(0)
        return pipeline(
            prompt=PROMPT, num_inference_steps=1, guidance_scale=0.0, width=width, height=height, generator=seed
        ).images[0]

    with torch.inference_mode():
        embeddings = pipeline.encode_prompt(PROMPT, device, 1, False)[0]
        latents = torch.randn(
            generator.latent_shape(width, height), generator=torch.Generator("cpu").manual_seed(0)
        ).to(device, dtype)
        timestep = torch.tensor(999, device=device)
        unet, encoder = pipeline.unet, pipeline.text_encoder

        def step() -> Any:
            return unet(latents, timestep, encoder_hidden_states=embeddings, return_dict=False)

        def encode() -> Any:
            return pipeline.encode_prompt(PROMPT, device, 1, False)

        figures: dict[str, Any] = {"mode": mode}
        reference = picture()
        figures["bf16"] = {
            "unet_step": timed(step, repeats=repeats, warmup=warmup).to_dict(),
            "text_encode": timed(encode, repeats=repeats, warmup=warmup).to_dict(),
            "unet_mb": round(parameter_bytes(unet) / 2**20, 1),
            "text_encoder_mb": round(parameter_bytes(encoder) / 2**20, 1),
        }
        before = memory_mb()["rss_mb"]
        quantize(unet, mode)
        release_memory()
        figures["unet_int8"] = {
            "unet_step": timed(step, repeats=repeats, warmup=warmup).to_dict(),
            "unet_mb": round(parameter_bytes(unet) / 2**20, 1),
            "rss_change_mb": round(memory_mb()["rss_mb"] - before, 1),
            "psnr_db": round(psnr(reference, picture()), 2),
        }
        quantize(encoder, mode)
        release_memory()
        figures["unet_and_text_encoder_int8"] = {
            "text_encode": timed(encode, repeats=repeats, warmup=warmup).to_dict(),
            "text_encoder_mb": round(parameter_bytes(encoder) / 2**20, 1),
            "psnr_db": round(psnr(reference, picture()), 2),
        }
    # TAESD is convolutions only: torchao's int8 configs quantise linear layers, so there is nothing to quantise.
    return figures


def summary_lines(figures: dict[str, Any]) -> list[str]:
    """The int8 lines for latest.md."""
    bf16, unet, both = figures["bf16"], figures["unet_int8"], figures["unet_and_text_encoder_int8"]
    return [
        f"- int8 ({figures['mode']}, torchao, linear layers): UNet step {unet['unet_step']['median_s']:.2f} s vs bf16 "
        f"{bf16['unet_step']['median_s']:.2f} s; UNet weights {unet['unet_mb']:.0f} MB vs {bf16['unet_mb']:.0f} MB; "
        f"picture PSNR against bf16 (same seed) {unet['psnr_db']:.1f} dB. Text encoder too: encoding "
        f"{both['text_encode']['median_s']:.3f} s vs {bf16['text_encode']['median_s']:.3f} s, weights "
        f"{both['text_encoder_mb']:.0f} MB vs {bf16['text_encoder_mb']:.0f} MB, PSNR {both['psnr_db']:.1f} dB."
    ]
