"""The benchmark harness's own pieces, on tiny models: timing, memory, builds, the scripted refiner, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.build import TINY_QWEN, ImageConfigs, build_image_model, build_refiner_model
from benchmarks.measure import machine, memory_mb, reset_peak_memory, timed
from benchmarks.phases import PLAN_EDIT, PLAN_NEW, ScriptedPlans
from benchmarks.report import render_markdown, write_results
from benchmarks.run import summarize


def test_timed_runs_the_warmup_unmeasured_and_takes_the_median() -> None:
    calls: list[int] = []
    timing = timed(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(timing.runs) == 3
    assert timing.median == sorted(timing.runs)[1]
    with pytest.raises(ValueError, match="repeats"):
        timed(lambda: None, repeats=0)


def test_the_peak_memory_sees_an_allocation_and_can_be_reset() -> None:
    reset_peak_memory()
    before = memory_mb()
    block = bytearray(64 * 2**20)  # 64 MB, touched
    block[::4096] = b"x" * len(block[::4096])
    during = memory_mb()
    assert during["peak_rss_mb"] >= before["rss_mb"] + 60
    del block
    reset_peak_memory()
    assert memory_mb()["peak_rss_mb"] < during["peak_rss_mb"]


def test_machine_names_the_cpu_and_torch() -> None:
    info = machine().to_dict()
    assert info["cores"] >= 1 and info["cpu_model"] and info["torch_version"]
    assert json.dumps(info)


def test_a_build_is_reused_and_loads_with_our_loader(tmp_path: Path) -> None:
    import torch

    from illustrator.loading import load_image_pipeline

    folder = build_image_model(tmp_path / "image", ImageConfigs.tiny())
    weights = sorted(folder.rglob("*.safetensors"))
    stamps = [path.stat().st_mtime_ns for path in weights]
    assert build_image_model(folder, ImageConfigs.tiny()) == folder
    assert [path.stat().st_mtime_ns for path in weights] == stamps
    pipelines = load_image_pipeline(
        str(folder), device=torch.device("cpu"), dtype=torch.float32, fast_decoder=str(folder / "taesd"), decoder="fast"
    )
    assert pipelines.decoder == "fast"


def test_the_scripted_llm_answers_a_realistic_plan_through_the_refiner(tmp_path: Path) -> None:
    from illustrator.plan import Action, ChatMessage, RefinerState
    from illustrator.refiner import LLMRefiner
    from illustrator.refiner_loading import load_refiner

    folder = build_refiner_model(tmp_path / "refiner", TINY_QWEN)
    model, tokenizer = load_refiner(str(folder))
    refiner = LLMRefiner(model, tokenizer, name="tiny")
    script = ScriptedPlans(model, tokenizer)
    plan = refiner.refine([ChatMessage("user", "a mermaid")], RefinerState())
    assert plan.source == "llm" and plan.action is Action.NEW and "mermaid" in plan.prompt
    assert refiner.last_timing is not None and refiner.last_timing.new_tokens <= script.tokens(PLAN_NEW) + 1
    script.plan = PLAN_EDIT
    state = RefinerState(last_prompt="a mermaid", has_picture=True)
    edit = refiner.refine([ChatMessage("user", "a mermaid"), ChatMessage("user", "red hair")], state)
    assert edit.action is Action.EDIT and "red hair" in edit.prompt


def _results() -> dict:
    timing = {"median_s": 1.0, "runs_s": [1.0, 1.1, 0.9]}
    memory = {"rss_mb": 1000.0, "peak_rss_mb": 1200.0}
    return {
        "taken_at": "2026-11-25T00:00:00+00:00",
        "models": "test",
        "repeats": 3,
        "warmup": 1,
        "machine": machine().to_dict(),
        "plain": {
            "dtype": "float32",
            "load_s": 1.0,
            "txt2img": {"median_s": 12.0, "runs_s": [12.0]},
            "img2img": {"median_s": 16.0, "runs_s": [16.0]},
            "memory": {"one": memory, "both": {"rss_mb": 2000.0, "peak_rss_mb": 2100.0}},
        },
        "sharing": {"one": memory, "both": memory, "shared_weights": True},
        "ours": {
            "settings": {"dtype": "bfloat16", "decoder": "fast", "refiner_dtype": "bfloat16"},
            "txt2img_turn": {"median_s": 3.0, "runs_s": [3.0], "steps_s": {"refine": 1.0, "draw": 1.9, "save": 0.05}},
            "edit_turn": {"median_s": 2.5, "runs_s": [2.5], "steps_s": {"refine": 1.0, "draw": 1.4, "save": 0.05}},
            "memory": {"both": memory, "after_turns": memory},
        },
        "parts": {
            "refine": {**timing, "llm_asked": False},
            "llm_rewrite": {
                **timing,
                "dtype": "bfloat16",
                "prompt_tokens": 500,
                "prefill_s": 0.3,
                "new_tokens": 90,
                "tokens_per_s": 30.0,
                "bound_s": 5.6,
                "max_new_tokens": 160,
            },
            "text_encode": {"median_s": 0.1, "runs_s": [0.1]},
            "unet_step": {"median_s": 1.5, "runs_s": [1.5]},
            "vae_decode": {"median_s": 4.0, "runs_s": [4.0]},
            "vae_encode": {"median_s": 2.0, "runs_s": [2.0]},
            "taesd_decode": {"median_s": 0.25, "runs_s": [0.25]},
            "save": {"median_s": 0.05, "runs_s": [0.05]},
        },
    }


def test_the_summary_computes_the_target_ratios() -> None:
    summary = summarize(_results())
    assert summary["speedup_txt2img"] == 4.0 and summary["speedup_img2img"] == pytest.approx(6.4)
    assert summary["txt2img_parts_sum_s"] == pytest.approx(2.9)  # refine + encode + UNet + TAESD + save
    assert summary["txt2img_overhead_share"] == pytest.approx(0.1 / 3.0, abs=1e-3)
    assert summary["refiner_share_txt2img"] == pytest.approx(0.333, abs=1e-3)
    assert summary["plain_memory_ratio"] == 2.0 and summary["sharing_ratio"] == 1.0


def test_the_report_is_written_as_json_and_markdown(tmp_path: Path) -> None:
    results = _results()
    results["summary"] = summarize(results)
    json_path, markdown_path = write_results(results, tmp_path / "results")
    assert json.loads(json_path.read_text())["summary"]["speedup_txt2img"] == 4.0
    text = markdown_path.read_text()
    assert "**4.0x** faster than plain diffusers" in text
    assert "| TAESD decode | 0.25 s |" in text and "Machine:" in text
    assert text == render_markdown(results)


def _with_new_phases(results: dict) -> dict:
    results["optimised"] = {
        "dtype": "bfloat16",
        "txt2img": {"median_s": 2.5, "runs_s": [2.5]},
        "img2img": {"median_s": 2.0, "runs_s": [2.0]},
    }
    results["limits"] = {
        "matmul_peak": {"size": 4096, "dtype": "bfloat16", "gflops": 400.0},
        "unet_gflop_per_step": 600.0,
        "unet_gflops": 400.0,
        "unet_peak_fraction": 1.0,
    }
    turn = {"runs_s": [0.5], "prompt_tokens": 900, "prefill_tokens": 30, "answer_tokens": 20, "warm_s": 0.0}
    results["refiner_turns"] = {
        "sheet_certain_turn1": {**turn, "median_s": 0.01},
        "sheet_certain_turn10": {**turn, "median_s": 0.02},
        "sheet_story_turn1": {**turn, "median_s": 0.9},
        "sheet_story_turn10": {**turn, "median_s": 0.7},
        "today_turn1": {**turn, "median_s": 1.0},
        "today_turn10": {**turn, "median_s": 2.0},
        "kept_warm_turn10_short": {**turn, "median_s": 0.5},
        "kept_warm_turn10": {**turn, "median_s": 1.5},
    }
    results["ours"]["story_turn"] = {"median_s": 4.0, "runs_s": [4.0], "steps_s": {"refine": 1.0}}
    return results


def test_the_summary_keeps_the_new_target_figures() -> None:
    summary = summarize(_with_new_phases(_results()))
    assert summary["speedup_txt2img"] == 4.0  # kept
    assert summary["speedup_txt2img_vs_optimised"] == pytest.approx(0.83)  # 2.5 s optimised / 3.0 s turn
    # the app's path: the sheet, kept and warmed; the LLM asked (a story passage), or not (the rules certain)
    assert summary["refiner_s_turn1"] == 0.9 and summary["refiner_s_turn10"] == 0.7
    assert summary["refiner_s_turn10_rules_certain"] == 0.02 and summary["refiner_s_turn1_rules_certain"] == 0.01
    assert summary["refiner_s_turn10_whole_plan"] == 1.5 and summary["refiner_s_turn10_without_kept_caches"] == 2.0
    assert summary["refiner_s_turn10_best"] == {"lever": "sheet_certain_turn10", "median_s": 0.02}
    assert summary["story_turn_s"] == 4.0 and summary["speedup_story_turn"] == 3.0  # 12 s plain / 4 s
    assert summary["refiner_share_story"] == 0.25
    assert summary["unet_peak_fraction"] == 1.0
    results = _with_new_phases(_results())
    results["summary"] = summary
    text = render_markdown(results)
    assert "**0.83x** its speed" in text and "**100%** of the peak" in text and "turn 10, short answer" in text
    assert "story passage (LLM asked), warmed after turn 9, turn 10 | 0.70 s" in text
    assert "| our turn, bfloat16, decoder fast, refiner bfloat16: txt2img turn from a story passage" in text


def test_the_matmul_peak_and_the_unet_flops_are_measured(tmp_path: Path) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from benchmarks.limits import count_unet_flops, measure_matmul_peak, unet_fraction
    from benchmarks.phases import Options

    peak = measure_matmul_peak(torch.device("cpu"), torch.float32, Options(repeats=1), size=256)
    assert peak["gflops"] > 0 and len(peak["runs_s"]) == 3
    folder = build_image_model(tmp_path / "image", ImageConfigs.tiny())
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet").eval()
    channels, width = unet.config.in_channels, unet.config.cross_attention_dim
    one = count_unet_flops(unet, torch.zeros(1, channels, 8, 8), torch.tensor(999), torch.zeros(1, 77, width))
    two = count_unet_flops(unet, torch.zeros(2, channels, 8, 8), torch.tensor(999), torch.zeros(2, 77, width))
    assert one > 0 and two == 2 * one
    assert unet_fraction(200 * 10**9, 1.0, 400.0)["unet_peak_fraction"] == 0.5


def test_the_optimised_recipe_draws_and_edits(tmp_path: Path) -> None:
    import torch

    from benchmarks.limits import measure_optimised
    from benchmarks.phases import Options

    folder = build_image_model(tmp_path / "image", ImageConfigs.tiny())
    figures = measure_optimised(folder, torch.device("cpu"), torch.float32, 64, Options(repeats=1, warmup=0))
    assert figures["txt2img"]["median_s"] > 0 and figures["img2img"]["median_s"] > 0
    assert figures["dtype"] == "float32"


def test_the_refiner_turns_measure_each_lever_on_the_same_conversation(tmp_path: Path) -> None:
    from benchmarks.phases import Options
    from benchmarks.refiner_turns import CHANGE_TURN10, SHORT_ANSWER, measure_refiner_turns
    from illustrator.refiner import LLMRefiner
    from illustrator.refiner_loading import load_refiner

    model, tokenizer = load_refiner(str(build_refiner_model(tmp_path / "refiner", TINY_QWEN)))
    refiner = LLMRefiner(model, tokenizer, name="tiny")
    script = ScriptedPlans(model, tokenizer)
    turns = measure_refiner_turns(refiner, script, Options(repeats=1, warmup=0))
    today, warm = turns["today_turn10"], turns["kept_warm_turn10"]
    assert today["prompt_tokens"] == warm["prompt_tokens"] > turns["today_turn1"]["prompt_tokens"]
    assert today["prefill_tokens"] == today["prompt_tokens"]  # prompt lookup cannot start from a kept cache
    assert warm["prefill_tokens"] < today["prompt_tokens"] / 4  # only the new message (and the answer's start)
    assert turns["kept_turn10"]["prefill_tokens"] > warm["prefill_tokens"]  # the state line changed since turn 9
    assert turns["kept_warm_turn10_short"]["answer_tokens"] == script.tokens(SHORT_ANSWER) < today["answer_tokens"]
    # the app's path: the sheet asks the LLM for a story passage only, and warming leaves it the wish to prefill
    certain, story = turns["sheet_certain_turn10"], turns["sheet_story_turn10"]
    assert not certain["llm_asked"] and certain["answer_tokens"] == 0 and certain["prefill_tokens"] == 0
    assert story["llm_asked"] and story["answer_tokens"] == script.tokens(CHANGE_TURN10) < today["answer_tokens"]
    assert story["prefill_tokens"] < turns["sheet_story_turn10_not_warmed"]["prefill_tokens"]
    assert story["prefill_tokens"] < story["prompt_tokens"] / 2 and story["warm_s"] > 0


def test_a_whole_tiny_quick_run_writes_the_target_figures(tmp_path: Path) -> None:
    from benchmarks.run import main

    assert (
        main(["--tiny", "--quick", "--no-int8", "--models-dir", str(tmp_path / "models"), "--out", str(tmp_path)]) == 0
    )
    results = json.loads((tmp_path / "latest.json").read_text())
    summary = results["summary"]
    for key in ("speedup_txt2img", "speedup_txt2img_vs_optimised", "refiner_s_turn10", "unet_peak_fraction"):
        assert isinstance(summary[key], float), key
    assert results["parts"]["refine"]["llm_asked"] is False and results["parts"]["llm_change"]["llm_asked"] is True
    assert results["ours"]["story_turn"]["steps_s"]["refine"] > results["ours"]["txt2img_turn"]["steps_s"]["refine"]
    assert "refine_inside_minus_alone" in summary["txt2img_overhead_by_step_s"]
    assert "txt2img turn from a story passage" in (tmp_path / "latest.md").read_text()


def test_int8_quantises_the_unet_and_reports_the_change_in_the_picture(tmp_path: Path) -> None:
    import torch

    pytest.importorskip("torchao")
    from benchmarks.phases import Options
    from benchmarks.quantize import measure_int8, psnr
    from illustrator.generator import Generator
    from illustrator.loading import load_image_pipeline

    folder = build_image_model(tmp_path / "image", ImageConfigs.tiny())
    pipelines = load_image_pipeline(str(folder), device=torch.device("cpu"), dtype=torch.float32)
    generator = Generator(
        pipelines, model_name="tiny", is_placeholder=True, device=torch.device("cpu"), dtype=torch.float32
    )
    figures = measure_int8(generator, Options(repeats=1, warmup=0))
    assert figures["unet_int8"]["unet_mb"] < figures["bf16"]["unet_mb"]  # the tiny UNet is mostly convolutions
    assert figures["unet_int8"]["psnr_db"] > 10
    assert psnr(np.zeros((2, 2)), np.zeros((2, 2))) == float("inf")
