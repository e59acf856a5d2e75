"""`python -m benchmarks.edit_start`: what an edit on a remote replica costs to start, with and without kept latents.

An edit starts from the latents of the picture it changes. Either they travel with the request (kept in the web
process), or the replica encodes the picture again with the VAE (its latents were lost, or another replica drew it).
This measures both at sd-turbo's size: the full-size sd-turbo VAE encoder (random weights from the published config,
which cost what the real ones cost) on this machine's CPU, and the bytes and Ray object-store round trip of each
payload on a local Ray cluster.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "configs" / "sd-turbo_vae.json"
SIZE = 512


def _median_seconds(work, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    import numpy as np
    import ray
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    config = {k: v for k, v in json.loads(CONFIG.read_text()).items() if not k.startswith("_")}
    vae = AutoencoderKL.from_config(config).eval()
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
    pixels = torch.from_numpy(np.asarray(picture)).permute(2, 0, 1)[None].float() / 127.5 - 1
    latents = torch.randn(1, 4, SIZE // 8, SIZE // 8, dtype=torch.bfloat16)

    figures: dict[str, float] = {}
    with torch.no_grad():
        vae.encode(pixels)  # warm-up
        figures["vae_encode_float32_s"] = _median_seconds(lambda: vae.encode(pixels))
        vae_bf16 = vae.to(torch.bfloat16)
        figures["vae_encode_bfloat16_s"] = _median_seconds(lambda: vae_bf16.encode(pixels.to(torch.bfloat16)))
    figures["latents_bytes"] = len(pickle.dumps(latents))
    figures["picture_bytes"] = len(pickle.dumps(picture))

    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:

        @ray.remote
        def echo(payload: object) -> object:
            return payload

        for name, payload in (("latents", latents), ("picture", picture)):
            ray.get(echo.remote(payload))  # warm-up
            figures[f"ray_round_trip_{name}_s"] = _median_seconds(lambda p=payload: ray.get(echo.remote(p)), 5)
    finally:
        ray.shutdown()
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
