"""The measured phases: plain diffusers, our turn through the service, each part alone, torch.compile, start-up."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.measure import Timing, memory_mb, release_memory, reset_peak_memory, timed

logger = logging.getLogger(__name__)

PROMPT = "a mermaid sitting on a rock near a waterfall, starlit night sky, long black hair, green tail"
EDIT_PROMPT = "a mermaid with red hair sitting on a rock near a waterfall, starlit night sky, green tail"
MESSAGE_NEW = "A mermaid sitting near a waterfall under a starlit sky, long black hair, green tail"
MESSAGE_EDIT = "make her hair red"
# What a good refiner answers: the scripted LLM output spells these (see ScriptedPlans).
PLAN_NEW = (
    '{"prompt": "' + PROMPT + ', detailed fantasy illustration", "negative_prompt": "blurry, low quality, deformed", '
    '"action": "new", "strength": null, "reply": "Here is your mermaid by the waterfall under the stars."}'
)
PLAN_EDIT = (
    '{"prompt": "' + EDIT_PROMPT + ', detailed fantasy illustration", "negative_prompt": "blurry, low quality, '
    'deformed", "action": "edit", "strength": 0.55, "reply": "Making her hair red."}'
)
# A story passage: the rules read little of it, so the sheet asks the LLM for the change (scripted as below).
MESSAGE_STORY = (
    "Mira climbed the lighthouse stairs at midnight, her lantern swinging, while the storm threw waves at the rocks."
)
CHANGE_STORY = (
    '{"action": "new", "changes": [{"op": "add_subject", "subject": "Mira", "value": "Mira"}, '
    '{"op": "set", "attribute": "holding", "value": "holding a lantern"}, '
    '{"op": "set", "subject": "scene", "attribute": "setting", "value": "lighthouse stairs"}]}'
)
EDIT_STRENGTH = 0.5
EDIT_STEPS = 2  # sd-turbo's model card: img2img with 2 steps at strength 0.5 runs one UNet step


@dataclass
class Options:
    """What one run measures and how."""

    repeats: int = 3
    warmup: int = 1
    device: str = "auto"
    plain: bool = True
    startup: bool = True
    compile: bool = False
    tiny: bool = False
    optimised: bool = True
    refiner_turns: bool = True
    int8: bool = True


# 1. plain diffusers ---------------------------------------------------------------------------------------------


def measure_plain(folder: Path, device: torch.device, size: int, options: Options) -> dict[str, Any]:
    """diffusers as its documentation and sd-turbo's model card show it: two pipelines, the device's default dtype."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    dtype = torch.float16 if device.type == "cuda" else torch.float32  # the model card's fp16 on GPUs; else default
    sync = device.type == "cuda"
    release_memory()
    reset_peak_memory()
    baseline = memory_mb()
    started = time.perf_counter()
    text_to_image = AutoPipelineForText2Image.from_pretrained(str(folder), dtype=dtype).to(device)
    load_s = time.perf_counter() - started
    text_to_image.set_progress_bar_config(disable=True)
    pictures: list[Any] = []

    def draw() -> None:
        pictures.append(
            text_to_image(prompt=PROMPT, num_inference_steps=1, guidance_scale=0.0, width=size, height=size).images[0]
        )

    txt2img = timed(draw, repeats=options.repeats, warmup=options.warmup, sync=sync)
    one = memory_mb()
    image_to_image = AutoPipelineForImage2Image.from_pretrained(str(folder), dtype=dtype).to(device)
    image_to_image.set_progress_bar_config(disable=True)
    start = pictures[0]

    def edit() -> None:
        image_to_image(
            prompt=EDIT_PROMPT, image=start, num_inference_steps=EDIT_STEPS, strength=EDIT_STRENGTH, guidance_scale=0.0
        ).images[0]

    img2img = timed(edit, repeats=options.repeats, warmup=options.warmup, sync=sync)
    both = memory_mb()
    release_memory()
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "load_s": round(load_s, 2),
        "txt2img": txt2img.to_dict(),
        "img2img": img2img.to_dict(),
        "memory": _memory_delta(baseline, one=one, both=both),
    }


# 2. our turn, through the service the app uses ------------------------------------------------------------------


class ScriptedPlans:
    """Makes the random-weight LLM answer a realistic plan: each step's logits are set to the plan's next token.

    The model still runs every forward pass a real answer costs (prefill, then one pass per token with the KV cache);
    only the choice of token is scripted, because random weights never write a plan and would run to the token limit.
    """

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.plan = PLAN_NEW
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            from transformers import LogitsProcessorList

            script = tokenizer(self.plan, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            start = kwargs["input_ids"].shape[1]
            kwargs["logits_processor"] = LogitsProcessorList([_Script(script, start)])
            return original(*args, **kwargs)

        model.generate = generate

    def hook(self, start: int) -> Any:
        """The scores hook for a refiner that decodes by itself (kept caches): the plan's tokens from `start` on."""
        script = self.tokenizer(self.plan, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        return _Script(script, start)

    def tokens(self, plan: str) -> int:
        return len(self.tokenizer(plan, add_special_tokens=False)["input_ids"])


class _Script:
    def __init__(self, script: list[int], start: int) -> None:
        self.script, self.start = script, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        position = min(input_ids.shape[1] - self.start, len(self.script) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.script[position]] = 0.0
        return forced


class Stopwatch:
    """Times the calls of chosen methods of live objects (the turn's steps), by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label].append(time.perf_counter() - started)

        setattr(owner, name, timed_call)

    def clear(self) -> None:
        self.seconds.clear()

    def medians(self) -> dict[str, float]:
        return {label: round(Timing(runs).median, 4) for label, runs in self.seconds.items()}


@dataclass
class OursContext:
    """What the parts phase reuses from the turn phase: the loaded models and the service."""

    service: Any
    generator: Any
    refiner: Any
    script: ScriptedPlans
    data_dir: Path
    session_id: str
    last_result: Any = None
    drawn: list[Any] = field(default_factory=list)


def measure_ours(
    image_folder: Path, refiner_folder: Path, data_dir: Path, options: Options
) -> tuple[dict[str, Any], OursContext]:
    """Our txt2img and edit turns through TurnService, wired as the app wires it, with the app's default settings."""
    from illustrator.library import Library
    from illustrator.models import ModelManager
    from illustrator.service import TurnService
    from illustrator.settings import Settings
    from storage.db import create_db
    from storage.files import PictureFiles
    from storage.thumbnails import Thumbnails

    settings = Settings(
        data_dir=data_dir,
        image_model=str(image_folder),
        refiner_model=str(refiner_folder),
        fast_decoder=str(image_folder / "taesd"),  # madebyollin/taesd, built locally (the default asks the hub)
        device=options.device,
    )
    release_memory()
    reset_peak_memory()
    baseline = memory_mb()
    models = ModelManager(settings)
    service_db, service_files = create_db(settings.resolved_database_url), PictureFiles(settings.pictures_dir)
    service = TurnService(settings, service_db, service_files, models)
    started = time.perf_counter()
    status = models.wait()
    load_s = time.perf_counter() - started
    if status.placeholder or status.state.value != "ready":
        raise RuntimeError(f"The benchmark models did not load: {status.summary}")
    loaded = memory_mb()
    generator, refiner = models.generator(), models.refiner()  # the app's refiner: the story sheet over the LLM
    llm = chat_llm(refiner)
    script = ScriptedPlans(llm.model, llm.tokenizer)
    llm.scores_hook = script.hook  # the app's LLM decodes by itself when it keeps its KV caches
    library = Library(service_db, service_files, Thumbnails(settings.thumbnails_dir, service_files))
    session_id = library.create_session("benchmark").id  # where the parts phase saves its pictures
    context = OursContext(service, generator, refiner, script, data_dir, session_id)

    watch = Stopwatch()
    watch.wrap(refiner, "refine", "refine")
    watch.wrap(generator, "text_to_image", "draw")
    watch.wrap(generator, "image_to_image", "draw")
    watch.wrap(service, "_save_turn", "save")
    watch.wrap(generator.pipelines.text_to_image.vae, "encode", "vae_encode")
    watch.wrap(generator.pipelines.image_to_image.vae, "encode", "vae_encode")
    _wrap_inner_steps(watch, service, generator, refiner)
    sync = generator.device.type == "cuda"

    def turn(session: str | None, message: str, action: str, change: str | None = None) -> str:
        """One turn; `change`: the LLM's scripted answer where the sheet must ask it (None: the rules are certain)."""
        script.plan = change or ""
        result = service.send(session, message)
        asked = getattr(refiner, "last_asked", True)
        taken = result.plan.source == "llm"
        if result.picture.action != action or asked != (change is not None) or taken != (change is not None):
            raise RuntimeError(f"The scripted turn went wrong (LLM asked: {asked}): {result.plan}")
        context.last_result = result
        return str(result.session_id)

    # Each txt2img turn opens a session and each edit edits its first picture, so that every measured turn reads
    # the same conversation as the parts measured alone (a session's conversation grows with its turns).
    first_turn_started = time.perf_counter()
    turn(None, MESSAGE_NEW, "new")
    first_turn_s = time.perf_counter() - first_turn_started
    txt2img = Timing()
    new_seconds: dict[str, list[float]] = defaultdict(list)
    for _ in range(options.repeats):
        as_a_new_session(service, refiner)
        watch.clear()
        started = time.perf_counter()
        turn(None, MESSAGE_NEW, "new")
        if sync:
            torch.cuda.synchronize()
        txt2img.runs.append(time.perf_counter() - started)
        for label, seconds in watch.seconds.items():
            new_seconds[label].extend(seconds)
    new_steps = {label: round(Timing(seconds).median, 4) for label, seconds in new_seconds.items()}
    edit = Timing()
    edit_seconds: dict[str, list[float]] = defaultdict(list)
    for run in range(options.warmup + options.repeats):
        as_a_new_session(service, refiner)
        session = turn(None, MESSAGE_NEW, "new")
        service.wait_until_prepared()  # the writer reads the picture and types: the refiner prepares meanwhile
        watch.clear()
        started = time.perf_counter()
        turn(session, MESSAGE_EDIT, "edit")
        if run >= options.warmup:
            edit.runs.append(time.perf_counter() - started)
            for label, seconds in watch.seconds.items():
                edit_seconds[label].extend(seconds)
    edit_steps = {label: round(Timing(seconds).median, 4) for label, seconds in edit_seconds.items()}
    edit_steps.setdefault("vae_encode", 0.0)
    story = Timing()  # a new picture from a story passage: the sheet asks the LLM for the change
    story_seconds: dict[str, list[float]] = defaultdict(list)
    for run in range(options.warmup + options.repeats):
        as_a_new_session(service, refiner)
        watch.clear()
        started = time.perf_counter()
        turn(None, MESSAGE_STORY, "new", CHANGE_STORY)
        if run >= options.warmup:
            story.runs.append(time.perf_counter() - started)
            for label, seconds in watch.seconds.items():
                story_seconds[label].extend(seconds)
    story_steps = {label: round(Timing(seconds).median, 4) for label, seconds in story_seconds.items()}
    after = memory_mb()
    return {
        "settings": {
            "device": str(generator.device),
            "dtype": str(generator.dtype).removeprefix("torch."),
            "decoder": generator.decoder,
            "refiner_dtype": str(llm.model.dtype).removeprefix("torch."),
            "steps": generator.defaults.steps,
            "size": f"{generator.defaults.width}x{generator.defaults.height}",
        },
        "load_s": round(load_s, 2),
        "first_turn_s": round(first_turn_s, 2),
        "txt2img_turn": {**txt2img.to_dict(), "steps_s": new_steps},
        "edit_turn": {**edit.to_dict(), "steps_s": edit_steps},
        "story_turn": {**story.to_dict(), "steps_s": story_steps},
        "memory": {
            **_memory_delta(baseline, both=loaded),
            "after_turns": _memory_delta(baseline, after=after)["after"],
        },
    }, context


def chat_llm(refiner: Any) -> Any:
    """The LLM behind the app's refiner (the story sheet's proposer), or the refiner itself when it is the LLM."""
    return getattr(refiner, "proposer", None) or refiner


def as_a_new_session(service: Any, refiner: Any) -> None:
    """Kept KV caches as when a writer opens a new session in an app that served others: the prompt's head only
    (the system prompt, and for the sheet's change prompt an empty sheet: every new session's prompt starts so).

    Without this, each measured txt2img turn (the same message in a new session) would find its whole prompt kept.
    """
    from illustrator.plan import RefinerState

    service.wait_until_prepared()
    kept = getattr(chat_llm(refiner), "kept", None)
    if kept is not None:
        kept.clear()
        refiner.warm([], RefinerState())


def _wrap_inner_steps(watch: Stopwatch, service: Any, generator: Any, refiner: Any) -> None:
    """Time the steps inside refine, draw and save too, so that the turn's overhead can be told apart step by step."""
    text_to_image, image_to_image = generator.pipelines.text_to_image, generator.pipelines.image_to_image
    watch.wrap(service, "send", "turn")
    for pipeline in (text_to_image, image_to_image):
        watch.wrap(pipeline, "encode_prompt", "text_encode")
        watch.wrap(pipeline.image_processor, "postprocess", "postprocess")
    watch.wrap(text_to_image.unet, "forward", "unet")  # one object in both pipelines (from_pipe)
    watch.wrap(text_to_image.vae, "decode", "decode")
    watch.wrap(service._files, "save", "png_save")
    kept = getattr(service._models.backend(), "kept", None)  # the local backend's latents, found by the pixels
    if kept is not None:
        watch.wrap(kept, "keep", "latents_keep")
        watch.wrap(kept, "find", "latents_find")


def overhead_by_step(
    turn: dict[str, float], parts: dict[str, Any], decoder: str, turn_s: float | None = None
) -> dict[str, float]:
    """The turn's overhead over its parts alone, split: each part inside the turn minus alone, and what no part holds.

    The values add up to the turn (`turn_s`, its median) minus the sum of the parts: each is a median over the runs,
    so the last term holds what the medians of the steps do not add up to.
    """
    alone = {key: parts[key]["median_s"] for key in ("refine", "text_encode", "unet_step", decoder, "save")}
    draw_inside = turn.get("text_encode", 0.0) + turn.get("unet", 0.0) + turn.get("decode", 0.0)
    split = {
        "refine_inside_minus_alone": turn["refine"] - alone["refine"],
        "text_encode_inside_minus_alone": turn.get("text_encode", 0.0) - alone["text_encode"],
        "unet_inside_minus_alone": turn.get("unet", 0.0) - alone["unet_step"],
        "decode_inside_minus_alone": turn.get("decode", 0.0) - alone[decoder],
        "pipeline_rest (scheduler, latents, postprocess to PIL)": turn["draw"] - draw_inside,
        "save_inside_minus_alone": turn["save"] - alone["save"],
        "outside refine/draw/save (checks, storing the message, keeping latents)": (
            turn.get("turn", 0.0) - turn["refine"] - turn["draw"] - turn["save"]
        ),
    }
    if turn_s is not None:
        overhead = turn_s - sum(alone.values())
        split["the rest (the harness's own call around the turn, medians of steps vs the turn's)"] = overhead - sum(
            split.values()
        )
    return {key: round(value, 4) for key, value in split.items()}


# 3. each part alone -----------------------------------------------------------------------------------------------


def measure_parts(context: OursContext, image_folder: Path, options: Options) -> dict[str, Any]:
    """Each model part alone, in our settings (dtype, channels-last), and the save; the LLM's tokens per second."""
    from diffusers import AutoencoderKL

    from illustrator.plan import ChatMessage, RefinerState

    generator = context.generator
    pipeline = generator.pipelines.text_to_image
    device, dtype = generator.device, generator.dtype
    repeats, warmup, sync = options.repeats, options.warmup, device.type == "cuda"
    width, height = generator.defaults.width, generator.defaults.height
    parts: dict[str, Any] = {}

    # the refiner as in the turns: the sheet alone (the rules are certain of MESSAGE_NEW: no LLM), and the sheet
    # asking the LLM for a story passage's change
    refiner, llm = context.refiner, chat_llm(context.refiner)

    def fresh() -> None:
        as_a_new_session(context.service, refiner)

    new_session = [ChatMessage("user", MESSAGE_NEW)]
    parts["refine"] = timed(
        lambda: refiner.refine(new_session, RefinerState()), repeats=repeats, warmup=warmup, sync=sync, setup=fresh
    ).to_dict()
    parts["refine"]["llm_asked"] = bool(getattr(refiner, "last_asked", True))
    context.script.plan = CHANGE_STORY
    story = [ChatMessage("user", MESSAGE_STORY)]
    change = timed(
        lambda: refiner.refine(story, RefinerState()), repeats=repeats, warmup=warmup, sync=sync, setup=fresh
    )
    parts["llm_change"] = {
        **change.to_dict(),
        "llm_asked": bool(getattr(refiner, "last_asked", True)),
        "prefill_tokens": llm.last_prefill_tokens,
        "new_tokens": llm.last_timing.new_tokens,
    }

    # the whole-plan rewrite the app asked of the LLM before the sheet (a lever's history): prefill, tokens/s
    conversation = [ChatMessage("user", MESSAGE_NEW)]
    context.script.plan = PLAN_NEW

    def fresh_llm() -> None:
        as_a_new_session(context.service, llm)

    rewrite = timed(
        lambda: llm.refine(conversation, RefinerState()), repeats=repeats, warmup=warmup, sync=sync, setup=fresh_llm
    )
    new_tokens = llm.last_timing.new_tokens
    prefilled = llm.last_prefill_tokens  # with kept caches: the prompt's head came from the cache
    inputs = llm.tokenizer.apply_chat_template(
        llm.build_messages(conversation, RefinerState()),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    ).to(llm.model.device)
    with torch.inference_mode():
        prefill = timed(lambda: llm.model(**inputs), repeats=repeats, warmup=warmup, sync=sync)
    decode_rate = (new_tokens - 1) / max(rewrite.median - prefill.median, 1e-9)
    parts["llm_rewrite"] = {
        **rewrite.to_dict(),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "prefill_tokens": prefilled,
        "new_tokens": new_tokens,
        "prefill_s": round(prefill.median, 4),
        "tokens_per_s": round(decode_rate, 1),
        "bound_s": round(prefill.median + llm.max_new_tokens / decode_rate, 2),  # an answer that hits the limit
        "max_new_tokens": llm.max_new_tokens,
        "dtype": str(llm.model.dtype).removeprefix("torch."),
    }
    # the same rewrite without prompt-lookup decoding, with the kept system-prompt cache instead, and with neither
    lookup, kept, caches = llm.prompt_lookup_tokens, llm.cache_prefix, getattr(llm, "kept", None)
    llm.kept = None  # these two decode through transformers, as the app did before it kept its caches
    for key, lookup_tokens, keep in (("llm_rewrite_prefix_cache", 0, True), ("llm_rewrite_plain", 0, False)):
        llm.prompt_lookup_tokens, llm.cache_prefix = lookup_tokens, keep
        figure = timed(lambda: llm.refine(conversation, RefinerState()), repeats=repeats, warmup=warmup, sync=sync)
        parts[key] = {**figure.to_dict(), "prefill_tokens": llm.last_prefill_tokens}
    llm.prompt_lookup_tokens, llm.cache_prefix, llm.kept = lookup, kept, caches
    parts["llm_rewrite"]["prompt_lookup_tokens"] = lookup
    if llm.model.dtype != torch.bfloat16 and device.type == "cpu":  # what bf16 would give the refiner here
        original = llm.model.dtype
        llm.model.to(torch.bfloat16)
        parts["llm_rewrite_bf16"] = timed(
            lambda: llm.refine(conversation, RefinerState()), repeats=repeats, warmup=warmup
        ).to_dict()
        llm.model.to(original)

    with torch.inference_mode():
        # text encoding
        parts["text_encode"] = timed(
            lambda: pipeline.encode_prompt(PROMPT, device, 1, False), repeats=repeats, warmup=warmup, sync=sync
        ).to_dict()
        embeddings = pipeline.encode_prompt(PROMPT, device, 1, False)[0]

        # one UNet step, as the pipeline calls it
        latent_shape = generator.latent_shape(width, height)
        latents = torch.randn(latent_shape, generator=torch.Generator("cpu").manual_seed(0)).to(device, dtype)
        timestep = torch.tensor(999, device=device)
        unet = pipeline.unet
        parts["unet_step"] = timed(
            lambda: unet(latents, timestep, encoder_hidden_states=embeddings, return_dict=False),
            repeats=repeats,
            warmup=warmup,
            sync=sync,
        ).to_dict()

        # the full VAE, as our loader would prepare it (it is not kept when TAESD decodes)
        vae = AutoencoderKL.from_pretrained(str(image_folder), subfolder="vae", dtype=dtype).to(device).eval()
        if device.type in ("cpu", "cuda"):
            vae.to(memory_format=torch.channels_last)
        scale = vae.config.scaling_factor
        parts["vae_decode"] = timed(
            lambda: vae.decode(latents / scale), repeats=repeats, warmup=warmup, sync=sync
        ).to_dict()
        pixels = torch.rand((1, 3, height, width), generator=torch.Generator("cpu").manual_seed(1)) * 2 - 1
        pixels = pixels.to(device, dtype)
        parts["vae_encode"] = timed(lambda: vae.encode(pixels), repeats=repeats, warmup=warmup, sync=sync).to_dict()
        tiny = generator.pipelines.fast_decoder
        if tiny is not None:
            parts["taesd_decode"] = timed(
                lambda: tiny.decode(latents), repeats=repeats, warmup=warmup, sync=sync
            ).to_dict()

    # the save: the PNG file and the database rows, exactly as the turn does it
    result = context.last_result
    drawn = _drawn_picture(context)
    plan = result.plan
    parts["save"] = timed(
        lambda: context.service._save_turn(context.session_id, plan, [drawn], None, own_start=False),
        repeats=repeats,
        warmup=warmup,
    ).to_dict()
    release_memory()
    return parts


def _drawn_picture(context: OursContext) -> Any:
    from PIL import Image

    from illustrator.generator import GeneratedPicture, GenerationParams

    picture = context.last_result.picture
    image = Image.open(picture.path)
    image.load()
    params = GenerationParams(
        picture.prompt,
        picture.negative_prompt,
        picture.seed,
        picture.steps,
        picture.guidance_scale,
        picture.width,
        picture.height,
        picture.strength,
    )
    return GeneratedPicture(image=image, params=params, model_name=picture.model, seconds=0.0)


# 4. torch.compile, as an option ------------------------------------------------------------------------------------


def measure_compile(context: OursContext, options: Options) -> dict[str, Any]:
    """What compiling the UNet costs once, and what it saves per step afterwards."""
    generator = context.generator
    pipeline = generator.pipelines.text_to_image
    device, dtype = generator.device, generator.dtype
    sync = device.type == "cuda"
    with torch.inference_mode():
        embeddings = pipeline.encode_prompt(PROMPT, device, 1, False)[0]
        latents = torch.randn(generator.latent_shape(generator.defaults.width, generator.defaults.height)).to(
            device, dtype
        )
        timestep = torch.tensor(999, device=device)
        unet = pipeline.unet
        eager = timed(
            lambda: unet(latents, timestep, encoder_hidden_states=embeddings, return_dict=False),
            repeats=options.repeats,
            warmup=options.warmup,
            sync=sync,
        )
        compiled = torch.compile(unet)
        started = time.perf_counter()
        compiled(latents, timestep, encoder_hidden_states=embeddings, return_dict=False)
        first_call_s = time.perf_counter() - started
        fast = timed(
            lambda: compiled(latents, timestep, encoder_hidden_states=embeddings, return_dict=False),
            repeats=options.repeats,
            warmup=1,
            sync=sync,
        )
    gain = eager.median - fast.median
    compile_s = first_call_s - fast.median
    return {
        "eager_unet_step": eager.to_dict(),
        "compiled_unet_step": fast.to_dict(),
        "compile_s": round(compile_s, 1),
        "gain_per_step_s": round(gain, 3),
        "break_even_steps": round(compile_s / gain) if gain > 0 else None,
    }


# 5. start-up: the page, the models, the first picture ----------------------------------------------------------------


def measure_startup(model_args: list[str], label: str, timeout: float = 900.0) -> dict[str, Any]:
    """Start `illustrator serve` as a writer would, and time the page (GET / -> 200), the models and a first picture."""
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="illustrator-bench-") as tmp:
        port = _free_port()
        log = Path(tmp) / "serve.log"
        command = [
            sys.executable,
            "-m",
            "ui.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            tmp,
            *model_args,
        ]
        env = _child_environment(tmp)
        with log.open("w") as out:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                served_s = _wait_for_page(f"http://127.0.0.1:{port}/", started, timeout, process)
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                client.predict(text=MESSAGE_NEW, api_name="/send")
                first_picture_s = time.perf_counter() - started
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        text = log.read_text(errors="replace")
    ready = re.search(r"Models ready in ([0-9.]+) s", text)
    return {
        "label": label,
        "page_served_s": round(served_s, 2),
        "models_loaded_s": float(ready.group(1)) if ready else None,
        "first_picture_s": round(first_picture_s, 2),
    }


def _wait_for_page(url: str, started: float, timeout: float, process: subprocess.Popen[bytes]) -> float:
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"illustrator serve stopped with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"The page was not served within {timeout:.0f} s")


def _child_environment(data_dir: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(Path(data_dir) / "gradio"))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _memory_delta(baseline: dict[str, float], **points: dict[str, float]) -> dict[str, Any]:
    """Resident memory now and at its peak (and CUDA's peak) at each point, above the baseline taken before loading."""
    figures: dict[str, Any] = {}
    for name, point in points.items():
        figure = {
            "rss_mb": round(point["rss_mb"] - baseline["rss_mb"], 1),
            "peak_rss_mb": round(point["peak_rss_mb"] - baseline["rss_mb"], 1),
        }
        if "cuda_peak_mb" in point:
            figure["cuda_peak_mb"] = point["cuda_peak_mb"]
        figures[name] = figure
    return figures


def measure_sharing(folder: Path, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Resident memory of txt2img alone, then with img2img made by `from_pipe` as our loader does (same weights)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    release_memory()
    reset_peak_memory()
    baseline = memory_mb()
    text_to_image = AutoPipelineForText2Image.from_pretrained(str(folder), dtype=dtype).to(device)
    one = memory_mb()
    image_to_image = AutoPipelineForImage2Image.from_pipe(text_to_image)
    both = memory_mb()
    shared = image_to_image.unet is text_to_image.unet and image_to_image.vae is text_to_image.vae
    del text_to_image, image_to_image
    release_memory()
    figures = _memory_delta(baseline, one=one, both=both)
    figures["shared_weights"] = shared
    return figures
