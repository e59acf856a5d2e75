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
    parser.add_argument("--no-optimised", dest="optimised", action="store_false", help="skip the optimised baseline")
    parser.add_argument("--no-refiner-turns", dest="refiner_turns", action="store_false", help="skip turn 1 / turn 10")
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="skip int8 (torchao) on the UNet")
    parser.add_argument("--tiny", action="store_true", help="tiny models (tests the harness, measures nothing real)")
    parser.add_argument(
        "--startup-only", action="store_true", help="only the start-up phase (writes startup.json, not latest.*)"
    )
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
        optimised=args.optimised,
        refiner_turns=args.refiner_turns,
        int8=args.int8,
    )
    if args.startup_only:
        return _startup_only(options, args.models_dir, args.out)
    results = run(options, args.models_dir)
    paths = write_results(results, args.out)
    print(render_markdown(results))
    print("\nWritten: " + ", ".join(str(path) for path in paths))
    return 0


def run(options: Any, models_dir: Path) -> dict[str, Any]:
    """Every phase in one process (start-up in child processes), in an order that keeps peak memory low."""
    import torch

    from benchmarks import limits, phases
    from benchmarks.build import (
        QWEN_CONFIG,
        TINY_QWEN,
        ImageConfigs,
        build_image_model,
        build_refiner_model,
        read_config,
    )
    from benchmarks.measure import machine, release_memory
    from benchmarks.refiner_turns import measure_refiner_turns
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
    logger.info("The bf16 matmul peak…")
    results["limits"] = {"matmul_peak": limits.measure_matmul_peak(device, dtype, options)}
    if options.plain:
        logger.info("Plain diffusers…")
        results["plain"] = phases.measure_plain(image_folder, device, size, options)
    if options.optimised:
        logger.info("Plain diffusers, optimised recipe…")
        results["optimised"] = limits.measure_optimised(image_folder, device, dtype, size, options)
        release_memory()
    logger.info("Weight sharing…")
    results["sharing"] = phases.measure_sharing(image_folder, device, dtype)
    with tempfile.TemporaryDirectory(prefix="illustrator-bench-") as data_dir:
        logger.info("Our turns…")
        results["ours"], context = phases.measure_ours(image_folder, refiner_folder, Path(data_dir), options)
        logger.info("Each part alone…")
        results["parts"] = phases.measure_parts(context, image_folder, options)
        results["limits"].update(_unet_limits(context, results))
        if options.refiner_turns:
            logger.info("The refiner at turn 1 and turn 10…")
            results["refiner_turns"] = measure_refiner_turns(context.refiner, context.script, options)
        if options.compile:
            logger.info("torch.compile…")
            results["compile"] = phases.measure_compile(context, options)
        if options.int8:  # last: it quantises the loaded models in place
            logger.info("int8 (torchao)…")
            results["int8"] = _int8(context.generator, options)
        del context
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    if options.startup:
        logger.info("Start-up…")
        results["startup"] = _startup(image_folder, refiner_folder)
    results["summary"] = summarize(results)
    results["load_average_before_after"] = [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]]
    results["run_s"] = round(time.perf_counter() - started, 1)
    return results


def _startup(image_folder: Path, refiner_folder: Path) -> list[dict[str, Any]]:
    from benchmarks import phases

    full_size = ["--image-model", str(image_folder), "--refiner-model", str(refiner_folder)]
    return [
        phases.measure_startup(["--offline"], "offline preset"),
        phases.measure_startup([*full_size, "--fast-decoder", str(image_folder / "taesd")], "full-size models"),
    ]


def _startup_only(options: Any, models_dir: Path, out: Path) -> int:
    """The start-up phase alone (e.g. after a change on the page's import path): startup.json and a table."""
    import json

    from benchmarks.build import (
        QWEN_CONFIG,
        TINY_QWEN,
        ImageConfigs,
        build_image_model,
        build_refiner_model,
        read_config,
    )
    from benchmarks.report import startup_table

    kind = "tiny" if options.tiny else "sd-turbo"
    image_folder = build_image_model(
        models_dir / f"{kind}-image", ImageConfigs.tiny() if options.tiny else ImageConfigs.sd_turbo()
    )
    refiner_folder = build_refiner_model(
        models_dir / f"{kind}-refiner", TINY_QWEN if options.tiny else read_config(QWEN_CONFIG)
    )
    load_before = os.getloadavg()
    rows = _startup(image_folder, refiner_folder)
    results = {
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "startup": rows,
        "load_average_before_after": [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(startup_table(rows)))
    return 0


def _unet_limits(context: Any, results: dict[str, Any]) -> dict[str, Any]:
    """The UNet step's FLOPs (counted) and its achieved fraction of the matmul peak measured in this run."""
    import torch

    from benchmarks.limits import count_unet_flops, unet_fraction
    from benchmarks.phases import PROMPT

    generator = context.generator
    pipeline = generator.pipelines.text_to_image
    device, dtype = generator.device, generator.dtype
    with torch.inference_mode():
        embeddings = pipeline.encode_prompt(PROMPT, device, 1, False)[0]
    latents = torch.zeros(generator.latent_shape(generator.defaults.width, generator.defaults.height)).to(device, dtype)
    flops = count_unet_flops(pipeline.unet, latents, torch.tensor(999, device=device), embeddings)
    step_s = results["parts"]["unet_step"]["median_s"]
    return unet_fraction(flops, step_s, results["limits"]["matmul_peak"]["gflops"])


def _int8(generator: Any, options: Any) -> dict[str, Any]:
    """int8 figures, or why there are none (torchao missing, or it failed on this machine)."""
    from benchmarks.quantize import measure_int8
    from illustrator.errors import ModelUnavailable

    try:
        return measure_int8(generator, options)
    except (ModelUnavailable, RuntimeError, NotImplementedError) as e:
        logger.warning("int8 was not measured: %s", e)
        return {"error": str(e)}


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the targets are about."""
    from benchmarks.phases import overhead_by_step

    ours, parts = results["ours"], results["parts"]
    decoder = "taesd_decode" if ours["settings"]["decoder"] == "fast" else "vae_decode"
    model_parts = {
        "refine": parts["refine"]["median_s"],  # as in the turn: the sheet, with the LLM only where it asks it
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
        "refiner_share_txt2img": round(ours["txt2img_turn"]["steps_s"].get("refine", 0.0) / turn, 3),
        "refiner_share_edit": round(ours["edit_turn"]["steps_s"].get("refine", 0.0) / edit_turn, 3),
        "edit_turn_vae_encode_s": ours["edit_turn"]["steps_s"].get("vae_encode", 0.0),
        "sharing_ratio": _ratio(results["sharing"]["both"]["rss_mb"], results["sharing"]["one"]["rss_mb"]),
    }
    steps = ours["txt2img_turn"]["steps_s"]
    if "turn" in steps:
        summary["txt2img_overhead_by_step_s"] = overhead_by_step(steps, parts, decoder, turn)
    if "plain" in results:
        plain = results["plain"]
        summary["speedup_txt2img"] = _ratio(plain["txt2img"]["median_s"], turn)
        summary["speedup_img2img"] = _ratio(plain["img2img"]["median_s"], edit_turn)
        summary["speedup_txt2img_image_only"] = _ratio(plain["txt2img"]["median_s"], turn - model_parts["refine"])
        summary["plain_memory_ratio"] = _ratio(plain["memory"]["both"]["rss_mb"], plain["memory"]["one"]["rss_mb"])
    if "optimised" in results:  # target: our turn at most 1.2x the optimised bare draw, i.e. this >= 0.83
        summary["speedup_txt2img_vs_optimised"] = _ratio(results["optimised"]["txt2img"]["median_s"], turn)
        summary["speedup_img2img_vs_optimised"] = _ratio(results["optimised"]["img2img"]["median_s"], edit_turn)
    story = ours.get("story_turn")
    if story:  # a new picture from a story passage: the one turn of the three that asks the LLM
        summary["story_turn_s"] = story["median_s"]
        summary["refiner_share_story"] = round(story["steps_s"].get("refine", 0.0) / story["median_s"], 3)
        if "plain" in results:
            summary["speedup_story_turn"] = _ratio(results["plain"]["txt2img"]["median_s"], story["median_s"])
        if "optimised" in results:
            summary["speedup_story_turn_vs_optimised"] = _ratio(
                results["optimised"]["txt2img"]["median_s"], story["median_s"]
            )
    limits = results.get("limits", {})
    if "unet_peak_fraction" in limits:
        summary["unet_peak_fraction"] = limits["unet_peak_fraction"]
        summary["matmul_peak_gflops"] = limits["matmul_peak"]["gflops"]
    turns = results.get("refiner_turns")
    if turns:
        # the app's path: the sheet over the LLM, kept and warmed; the LLM asked (a story passage), the conservative
        # figure, and the rules certain (a plain wish: the LLM not asked)
        summary["refiner_s_turn1"] = turns["sheet_story_turn1"]["median_s"]
        summary["refiner_s_turn10"] = turns["sheet_story_turn10"]["median_s"]
        summary["refiner_s_turn1_rules_certain"] = turns["sheet_certain_turn1"]["median_s"]
        summary["refiner_s_turn10_rules_certain"] = turns["sheet_certain_turn10"]["median_s"]
        summary["refiner_s_turn10_whole_plan"] = turns["kept_warm_turn10"]["median_s"]  # before the sheet
        summary["refiner_s_turn10_without_kept_caches"] = turns["today_turn10"]["median_s"]
        best = min(turns, key=lambda key: turns[key]["median_s"] if "turn10" in key else float("inf"))
        summary["refiner_s_turn10_best"] = {"lever": best, "median_s": turns[best]["median_s"]}
    return summary


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator > 0 else None


if __name__ == "__main__":
    sys.exit(main())
