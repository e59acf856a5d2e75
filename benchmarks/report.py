"""The results of a run as a Markdown table (with how it was taken) and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PART_NAMES = {
    "refine": "refine as in the txt2img turn (the sheet; the rules are certain, the LLM is not asked)",
    "llm_change": "refine of a story passage (the sheet asks the LLM for the change)",
    "llm_rewrite": "LLM rewrite of the whole plan (the app's refiner before the sheet)",
    "llm_rewrite_prefix_cache": "LLM rewrite without prompt lookup, system prompt's KV cache kept",
    "llm_rewrite_plain": "LLM rewrite, plain greedy decoding (neither)",
    "llm_rewrite_bf16": "LLM rewrite, refiner in bfloat16",
    "text_encode": "text encoding",
    "unet_step": "UNet, one step",
    "vae_decode": "VAE decode (full)",
    "vae_encode": "VAE encode (full)",
    "taesd_decode": "TAESD decode",
    "save": "PNG + database save",
}


def write_results(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write latest.json and latest.md into `folder` (each through a temp file and a rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("latest.json", json.dumps(results, indent=2) + "\n"), ("latest.md", render_markdown(results))):
        path = folder / name
        temp = folder / f"{name}.tmp"
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
        paths.append(path)
    return paths


def render_markdown(results: dict[str, Any]) -> str:
    """The tables, then the machine and the way the figures were taken."""
    lines = [f"### Benchmark, {results['taken_at']} ({results['models']})", ""]
    lines += _turn_table(results)
    lines += ["", *_parts_table(results), ""]
    lines += _summary_lines(results)
    lines += _limits_lines(results)
    if results.get("refiner_turns"):
        from benchmarks.refiner_turns import summary_lines as refiner_lines

        lines += ["", *refiner_lines(results["refiner_turns"])]
    if results.get("int8") and "error" not in results["int8"]:
        from benchmarks.quantize import summary_lines as int8_lines

        lines += ["", *int8_lines(results["int8"])]
    elif results.get("int8"):
        lines += ["", f"- int8 was not measured: {results['int8']['error']}"]
    if "compile" in results:
        lines += ["", *_compile_lines(results["compile"])]
    if "startup" in results:
        lines += ["", *startup_table(results["startup"])]
    lines += ["", *_machine_lines(results)]
    return "\n".join(lines) + "\n"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _mb(figure: dict[str, Any] | None, key: str = "rss_mb") -> str:
    if not figure:
        return "–"
    text = f"{figure[key] / 1024:.2f} GB"
    if "cuda_peak_mb" in figure:
        text += f" (CUDA peak {figure['cuda_peak_mb'] / 1024:.2f} GB)"
    return text


def _turn_table(results: dict[str, Any]) -> list[str]:
    ours = results["ours"]
    settings = ours["settings"]
    rows = ["| what | median | runs | memory (resident, above start; peak) |", "|---|---|---|---|"]
    if "plain" in results:
        plain = results["plain"]
        label = f"plain diffusers, {plain['dtype']}"
        memory = plain["memory"]
        rows.append(
            f"| {label}: txt2img (1 step) | {_s(plain['txt2img']['median_s'])} | {_runs(plain['txt2img'])} | "
            f"{_mb(memory['one'])}; peak {_mb(memory['one'], 'peak_rss_mb')} |"
        )
        rows.append(
            f"| {label}: img2img (2 steps, strength 0.5) | {_s(plain['img2img']['median_s'])} | "
            f"{_runs(plain['img2img'])} | both pipelines {_mb(memory['both'])}; "
            f"peak {_mb(memory['both'], 'peak_rss_mb')} |"
        )
    label = f"our turn, {settings['dtype']}, decoder {settings['decoder']}, refiner {settings['refiner_dtype']}"
    memory = ours["memory"]
    rows.append(
        f"| {label}: txt2img turn (refine + draw + save) | {_s(ours['txt2img_turn']['median_s'])} | "
        f"{_runs(ours['txt2img_turn'])} | both models {_mb(memory['both'])}; "
        f"peak {_mb(memory['after_turns'], 'peak_rss_mb')} |"
    )
    rows.append(f"| {label}: edit turn | {_s(ours['edit_turn']['median_s'])} | {_runs(ours['edit_turn'])} | |")
    if "story_turn" in ours:
        story = ours["story_turn"]
        rows.append(
            f"| {label}: txt2img turn from a story passage (the LLM asked) | {_s(story['median_s'])} | "
            f"{_runs(story)} | |"
        )
    steps = ours["txt2img_turn"]["steps_s"]
    edit_steps = ours["edit_turn"]["steps_s"]
    rows.append(
        f"| inside our txt2img turn: refine / draw / save | {_s(steps.get('refine'))} / "
        f"{_s(steps.get('draw'))} / {_s(steps.get('save'))} | | |"
    )
    rows.append(
        f"| inside our edit turn: refine / draw / save; VAE encode | {_s(edit_steps.get('refine'))} / "
        f"{_s(edit_steps.get('draw'))} / {_s(edit_steps.get('save'))}; {_s(edit_steps.get('vae_encode'))} "
        "| | |"
    )
    return rows


def _runs(figure: dict[str, Any]) -> str:
    return ", ".join(f"{run:.2f}" for run in figure["runs_s"])


def _parts_table(results: dict[str, Any]) -> list[str]:
    parts = results["parts"]
    rows = [
        f"| part alone ({results['ours']['settings']['dtype']}, channels-last) | median | runs | notes |",
        "|---|---|---|---|",
    ]
    for key, name in PART_NAMES.items():
        if key not in parts:
            continue
        figure = parts[key]
        note = ""
        if key == "llm_rewrite":
            note = (
                f"{figure['dtype']}: {figure['prompt_tokens']} prompt tokens ({figure.get('prefill_tokens', '–')} "
                f"computed in the call; prefill of all {figure['prefill_s']:.2f} s), "
                f"{figure['new_tokens']} new tokens at {figure['tokens_per_s']:.1f} tokens/s; an answer that "
                f"hits the {figure['max_new_tokens']}-token limit: {figure['bound_s']:.1f} s; prompt lookup "
                f"{figure.get('prompt_lookup_tokens', 0)} tokens"
            )
        elif key == "llm_change":
            note = f"{figure['prefill_tokens']} prompt tokens computed in the call, {figure['new_tokens']} new tokens"
        elif key == "refine":
            note = "LLM asked" if figure.get("llm_asked") else "LLM not asked"
        elif "prefill_tokens" in figure:
            note = f"same answer; prefill of {figure['prefill_tokens']} prompt tokens"
        rows.append(f"| {name} | {_s(figure['median_s'])} | {_runs(figure)} | {note} |")
    return rows


def _summary_lines(results: dict[str, Any]) -> list[str]:
    summary = results["summary"]
    lines = []
    if "speedup_txt2img" in summary:
        lines.append(
            f"- txt2img: our turn is **{summary['speedup_txt2img']}x** faster than plain diffusers "
            f"(image work alone, without the refiner: {summary['speedup_txt2img_image_only']}x); "
            f"edit: **{summary['speedup_img2img']}x**."
        )
    lines.append(
        f"- Our edit turn spends {_s(summary['edit_turn_vae_encode_s'])} on a VAE encode (it starts from the "
        "kept latents of the picture it edits)."
    )
    lines.append(
        f"- Overhead of our txt2img turn over the sum of its parts ({summary['txt2img_parts_sum_s']:.2f} s): "
        f"{summary['txt2img_overhead_s']:.2f} s, **{summary['txt2img_overhead_share'] * 100:.1f}%** of the "
        "turn."
    )
    for step, seconds in summary.get("txt2img_overhead_by_step_s", {}).items():
        lines.append(f"  - {step}: {seconds:+.3f} s")
    lines.append(
        f"- Refiner's share of the turn: {summary['refiner_share_txt2img'] * 100:.0f}% (txt2img), "
        f"{summary['refiner_share_edit'] * 100:.0f}% (edit)"
        + (
            f", {summary['refiner_share_story'] * 100:.0f}% (a story passage, the LLM asked: "
            f"{_s(summary['story_turn_s'])} a turn"
            + (f", {summary['speedup_story_turn']}x plain)." if "speedup_story_turn" in summary else ").")
            if "story_turn_s" in summary
            else "."
        )
    )
    sharing = results["sharing"]
    lines.append(
        f"- txt2img + img2img ready, sharing weights (`from_pipe`): {_mb(sharing['both'])} vs txt2img alone "
        f"{_mb(sharing['one'])}: **{summary['sharing_ratio']}x**"
        + (
            f" (plain diffusers' two pipelines: {summary['plain_memory_ratio']}x)."
            if "plain_memory_ratio" in summary
            else "."
        )
    )
    return lines


def _limits_lines(results: dict[str, Any]) -> list[str]:
    summary, lines = results["summary"], []
    if "optimised" in results:
        optimised = results["optimised"]
        lines.append(
            f"- Optimised plain recipe ({optimised['dtype']}, channels-last, TAESD; bare draw): txt2img "
            f"{_s(optimised['txt2img']['median_s'])}, img2img {_s(optimised['img2img']['median_s'])}; our turn is "
            f"**{summary['speedup_txt2img_vs_optimised']}x** its speed (txt2img; target >= 0.83, i.e. at most 1.2x "
            f"its time), edit {summary['speedup_img2img_vs_optimised']}x."
        )
    limits = results.get("limits", {})
    if "unet_peak_fraction" in limits:
        peak = limits["matmul_peak"]
        lines.append(
            f"- Matmul peak ({peak['size']}² {peak['dtype']}, best run): {peak['gflops']:.0f} GFLOP/s. The UNet step "
            f"({limits['unet_gflop_per_step']:.0f} GFLOP, counted) runs at {limits['unet_gflops']:.0f} GFLOP/s: "
            f"**{limits['unet_peak_fraction'] * 100:.0f}%** of the peak."
        )
    return lines


def _compile_lines(figures: dict[str, Any]) -> list[str]:
    even = figures["break_even_steps"]
    return [
        f"- torch.compile (UNet): compiling costs {figures['compile_s']:.0f} s once; a step takes "
        f"{figures['compiled_unet_step']['median_s']:.2f} s instead of {figures['eager_unet_step']['median_s']:.2f} s "
        f"({figures['gain_per_step_s']:.2f} s saved); it pays off after "
        + (f"{even} UNet steps." if even is not None else "never (no gain).")
    ]


def startup_table(rows: list[dict[str, Any]]) -> list[str]:
    """The start-up rows: page served, models loaded, first picture."""
    lines = ["| start-up of `illustrator serve` | page served | models loaded | first picture |", "|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['label']} | {_s(row['page_served_s'])} | {_s(row['models_loaded_s'])} | "
            f"{_s(row['first_picture_s'])} |"
        )
    return lines


def _machine_lines(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    gpu = machine["gpu"] or "none"
    before, after = results.get("load_average_before_after", [[None], [None]])
    return [
        f"Machine: {machine['cpu_model']} ({', '.join(machine['cpu_flags'])}), {machine['cores']} cores "
        f"({machine['torch_threads']} torch threads), GPU: {gpu}; torch {machine['torch_version']}, diffusers "
        f"{machine['diffusers_version']}, transformers {machine['transformers_version']}, Python "
        f"{machine['python_version']}. Load average (1 min) before/after: {before[0]} / {after[0]}. "
        f"Median of {results['repeats']} runs after {results['warmup']} warm-up; the whole run took "
        f"{results.get('run_s', 0):.0f} s.",
    ]
