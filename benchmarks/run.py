"""`make bench` / `python -m benchmarks.run`: one run measures plain diffusers, our turn, each part, and start-up.

Full-size sd-turbo (UNet, VAE, text encoder), TAESD and a Qwen2.5-0.5B-shaped LLM are built once from the published
configs in benchmarks/configs/ with random weights (they cost what the real models cost) into --models-dir.
Results go to benchmarks/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

logger = logging.getLogger("benchmarks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per figure, after the warm-up (median)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs before each figure")
    parser.add_argument("--quick", action="store_true", help="1 measured run, no warm-up, no start-up phase")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (our turn; plain diffusers uses the same)")
    parser.add_argument("--no-plain", dest="plain", action="store_false", help="skip plain diffusers")
    parser.add_argument("--no-startup", dest="startup", action="store_false", help="skip the start-up phase")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile on the UNet (slow)")
    parser.add_argument("--tiny", action="store_true", help="tiny models (tests the harness, measures nothing real)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "benchmarks" / ".models")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: every model is built here
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `illustrator` sets it; plain diffusers runs with it too
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from benchmarks.phases import Options
    from benchmarks.report import render_markdown, write_results

    options = Options(
        repeats=1 if args.quick else args.repeats,
        warmup=0 if args.quick else args.warmup,
        device=args.device,
        plain=args.plain,
        startup=args.startup and not args.quick,
        compile=args.compile,
        tiny=args.tiny,
    )
    results = run(options, args.models_dir)
    paths = write_results(results, args.out)
    print(render_markdown(results))
    print("\nWritten: " + ", ".join(str(path) for path in paths))
    return 0


def run(options: Any, models_dir: Path) -> dict[str, Any]:
    """Every phase in one process (start-up in child processes), in an order that keeps peak memory low."""
    import torch

    from benchmarks import phases
    from benchmarks.build import (
        QWEN_CONFIG,
        TINY_QWEN,
        ImageConfigs,
        build_image_model,
        build_refiner_model,
        read_config,
    )
    from benchmarks.measure import machine
    from illustrator.devices import choose_device_and_dtype

    started = time.perf_counter()
    load_before = os.getloadavg()
    kind = "tiny" if options.tiny else "sd-turbo"
    image_folder = build_image_model(
        models_dir / f"{kind}-image", ImageConfigs.tiny() if options.tiny else ImageConfigs.sd_turbo()
    )
    refiner_config = TINY_QWEN if options.tiny else read_config(QWEN_CONFIG)
    refiner_folder = build_refiner_model(models_dir / f"{kind}-refiner", refiner_config)
    device, dtype = choose_device_and_dtype(options.device)
    size = 256 if options.tiny else 512
    results: dict[str, Any] = {
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": "tiny (harness test)" if options.tiny else "sd-turbo 512x512 + TAESD + Qwen2.5-0.5B shape, random",
        "repeats": options.repeats,
        "warmup": options.warmup,
        "machine": machine().to_dict(),
    }
    if options.plain:
        logger.info("Plain diffusers…")
        results["plain"] = phases.measure_plain(image_folder, device, size, options)
    logger.info("Weight sharing…")
    results["sharing"] = phases.measure_sharing(image_folder, device, dtype)
    with tempfile.TemporaryDirectory(prefix="illustrator-bench-") as data_dir:
        logger.info("Our turns…")
        results["ours"], context = phases.measure_ours(image_folder, refiner_folder, Path(data_dir), options)
        logger.info("Each part alone…")
        results["parts"] = phases.measure_parts(context, image_folder, options)
        if options.compile:
            logger.info("torch.compile…")
            results["compile"] = phases.measure_compile(context, options)
        del context
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    if options.startup:
        logger.info("Start-up…")
        results["startup"] = [
            phases.measure_startup(["--offline"], "offline preset"),
            phases.measure_startup(
                [
                    "--image-model",
                    str(image_folder),
                    "--refiner-model",
                    str(refiner_folder),
                    "--fast-decoder",
                    str(image_folder / "taesd"),
                ],
                "full-size models",
            ),
        ]
    results["summary"] = summarize(results)
    results["load_average_before_after"] = [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]]
    results["run_s"] = round(time.perf_counter() - started, 1)
    return results


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the targets are about."""
    ours, parts = results["ours"], results["parts"]
    decoder = "taesd_decode" if ours["settings"]["decoder"] == "fast" else "vae_decode"
    model_parts = {
        "llm_rewrite": parts["llm_rewrite"]["median_s"],
        "text_encode": parts["text_encode"]["median_s"],
        "unet_step": parts["unet_step"]["median_s"],
        decoder: parts[decoder]["median_s"],
        "save": parts["save"]["median_s"],
    }
    turn = ours["txt2img_turn"]["median_s"]
    edit_turn = ours["edit_turn"]["median_s"]
    parts_sum = sum(model_parts.values())  # txt2img: one UNet step (sd-turbo's default)
    summary: dict[str, Any] = {
        "txt2img_parts_s": {key: round(value, 4) for key, value in model_parts.items()},
        "txt2img_parts_sum_s": round(parts_sum, 3),
        "txt2img_overhead_s": round(turn - parts_sum, 3),
        "txt2img_overhead_share": round((turn - parts_sum) / turn, 3),
        "refiner_share_txt2img": round(model_parts["llm_rewrite"] / turn, 3),
        "refiner_share_edit": round(model_parts["llm_rewrite"] / edit_turn, 3),
        "edit_turn_vae_encode_s": ours["edit_turn"]["steps_s"].get("vae_encode", 0.0),
        "sharing_ratio": _ratio(results["sharing"]["both"]["rss_mb"], results["sharing"]["one"]["rss_mb"]),
    }
    if "plain" in results:
        plain = results["plain"]
        summary["speedup_txt2img"] = _ratio(plain["txt2img"]["median_s"], turn)
        summary["speedup_img2img"] = _ratio(plain["img2img"]["median_s"], edit_turn)
        summary["speedup_txt2img_image_only"] = _ratio(plain["txt2img"]["median_s"], turn - model_parts["llm_rewrite"])
        summary["plain_memory_ratio"] = _ratio(plain["memory"]["both"]["rss_mb"], plain["memory"]["one"]["rss_mb"])
    return summary


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator > 0 else None


if __name__ == "__main__":
    sys.exit(main())
