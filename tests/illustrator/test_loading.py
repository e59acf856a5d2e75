"""Loading the image model from a diffusers folder and a single-file checkpoint; the offline preset; failures."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from illustrator.errors import ModelUnavailable
from illustrator.loading import ModelDefaults, load_image_pipeline, model_defaults
from illustrator.offline_image import FAST_DECODER_SUBFOLDER, MARKER_FILE, build_offline_image_model

CPU = torch.device("cpu")


def _weights(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.safetensors"))
    }


def _draw(pipelines: Any, seed: int = 7) -> np.ndarray:
    pipeline = pipelines.text_to_image
    image = pipeline(
        "a lighthouse at dusk",
        num_inference_steps=1,
        guidance_scale=0.0,
        width=256,
        height=256,
        generator=torch.Generator("cpu").manual_seed(seed),
    ).images[0]
    return np.asarray(image, dtype=np.int16)


def test_offline_build_is_cached(tiny_pipeline_dir: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in tiny_pipeline_dir.rglob("*.safetensors")}
    assert (tiny_pipeline_dir / MARKER_FILE).is_file()
    assert build_offline_image_model(tiny_pipeline_dir) == tiny_pipeline_dir
    after = {path: path.stat().st_mtime_ns for path in tiny_pipeline_dir.rglob("*.safetensors")}
    assert before and before == after  # nothing was written again


def test_offline_build_is_deterministic_and_an_interrupted_build_is_redone(
    tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    other = build_offline_image_model(tmp_path / "again")
    assert _weights(other) == _weights(tiny_pipeline_dir)
    (other / MARKER_FILE).unlink()  # as if the build had stopped half-way
    (other / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"half a file")
    build_offline_image_model(other)
    assert _weights(other) == _weights(tiny_pipeline_dir)


def test_load_from_a_diffusers_folder(tiny_pipeline_dir: Path) -> None:
    pipelines = load_image_pipeline(
        str(tiny_pipeline_dir), device=CPU, dtype=torch.float32, fast_decoder=str(tiny_pipeline_dir / "taesd")
    )
    assert pipelines.image_to_image.unet is pipelines.text_to_image.unet  # from_pipe shares the weights
    assert pipelines.image_to_image.vae is pipelines.text_to_image.vae
    assert pipelines.family == "sd2"
    assert pipelines.is_turbo  # sd-turbo's "trailing" scheduler
    assert pipelines.defaults == ModelDefaults(
        steps=1, guidance_scale=0.0, width=256, height=256, image_to_image_steps=2
    )
    assert type(pipelines.fast_decoder).__name__ == "AutoencoderTiny"
    assert pipelines.text_to_image.unet.dtype == torch.float32
    assert pipelines.text_to_image.safety_checker is None


def test_load_from_a_single_file_checkpoint_draws_the_same_picture(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    from_folder = load_image_pipeline(str(tiny_pipeline_dir), device=CPU, dtype=torch.float32)
    checkpoint = write_ldm_checkpoint(from_folder.text_to_image, tmp_path / "tiny-turbo.safetensors")

    from_file = load_image_pipeline(str(checkpoint), device=CPU, dtype=torch.float32, config=str(tiny_pipeline_dir))

    assert type(from_file.text_to_image).__name__ == "StableDiffusionPipeline"
    assert from_file.image_to_image.unet is from_file.text_to_image.unet
    assert (from_file.family, from_file.is_turbo) == ("sd2", True)
    # the same weights: pixels agree up to float rounding (the UNet is assembled in a different order)
    assert np.abs(_draw(from_file) - _draw(from_folder)).max() <= 2


def test_a_single_file_without_local_configs_is_unavailable_offline(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    pipelines = load_image_pipeline(str(tiny_pipeline_dir), device=CPU, dtype=torch.float32)
    checkpoint = write_ldm_checkpoint(pipelines.text_to_image, tmp_path / "model.safetensors")
    with pytest.raises(ModelUnavailable, match="model.safetensors': it needs files from the Hugging Face hub"):
        load_image_pipeline(str(checkpoint), device=CPU, dtype=torch.float32)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "nowhere" / "model", "no such file or folder"),
        (lambda tmp: tmp / "missing.safetensors", "no such file or folder"),
        (lambda tmp: _write(tmp / "broken.safetensors", b"\x00\x01 not a checkpoint"), "damaged"),
        (lambda tmp: _write(tmp / "broken.ckpt", b"not a pickle"), "damaged"),
        (lambda tmp: _mkdir(tmp / "empty-folder"), "no model_index.json"),
    ],
)
def test_wrong_paths_and_broken_files_are_unavailable(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    source = str(make(tmp_path))
    with pytest.raises(ModelUnavailable) as caught:
        load_image_pipeline(source, device=CPU, dtype=torch.float32)
    message = str(caught.value)
    assert message.startswith(f"Could not load the image model '{source}': ")
    assert reason in message and message.endswith(".")
    assert caught.value.__cause__ is not None


def test_a_hub_id_that_is_not_cached_is_unavailable_offline() -> None:
    with pytest.raises(
        ModelUnavailable, match="'stabilityai/sd-turbo': it needs files from the Hugging Face hub .* the hub is offline"
    ):
        load_image_pipeline("stabilityai/sd-turbo", device=CPU, dtype=torch.float32)


def test_a_missing_fast_decoder_only_turns_previews_off(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    pipelines = load_image_pipeline(
        str(tiny_pipeline_dir), device=CPU, dtype=torch.float32, fast_decoder=str(tmp_path / FAST_DECODER_SUBFOLDER)
    )
    assert pipelines.fast_decoder is None
    assert pipelines.text_to_image is not None


@pytest.mark.parametrize(
    ("family", "turbo", "expected"),
    [
        ("sd15", False, ModelDefaults(25, 7.0, 512, 512, 25)),
        ("sd2", False, ModelDefaults(25, 7.0, 768, 768, 25)),
        ("sdxl", False, ModelDefaults(25, 7.0, 1024, 1024, 25)),
        ("sd2", True, ModelDefaults(1, 0.0, 512, 512, 2)),
        ("sdxl", True, ModelDefaults(1, 0.0, 512, 512, 2)),
    ],
)
def test_defaults_per_family(family: str, turbo: bool, expected: ModelDefaults) -> None:
    assert model_defaults(family, turbo) == expected


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


# A single-file checkpoint in the original Stable Diffusion (LDM) key layout, made from the tiny pipeline.
# diffusers' package converts only single file -> diffusers; this is the inverse of its
# `convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint` and `convert_ldm_clip_checkpoint`.

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_FIXED = {"conv_norm_out": "norm_out"}
_VAE_ATTENTION = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def write_ldm_checkpoint(pipeline: Any, path: Path) -> Path:
    """Save the pipeline's UNet, VAE and CLIP text encoder as one `.safetensors` file in the LDM layout."""
    state: dict[str, torch.Tensor] = {}
    layers = pipeline.unet.config.layers_per_block
    has_attention = ["CrossAttn" in name for name in pipeline.unet.config.up_block_types]
    for key, value in pipeline.unet.state_dict().items():
        state["model.diffusion_model." + _unet_key(key, layers, has_attention)] = value
    up_blocks = len(pipeline.vae.config.up_block_types)
    for key, value in pipeline.vae.state_dict().items():
        ldm_key = _vae_key(key, up_blocks)
        if ".mid.attn_1." in ldm_key and value.ndim == 2:
            value = value[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        state["first_stage_model." + ldm_key] = value
    for key, value in pipeline.text_encoder.state_dict().items():
        text_key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + text_key] = value
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    return path


def _resnet(rest: str, shortcut: str = "skip_connection") -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return (shortcut if new == "conv_shortcut" else old) + rest[len(new) :]
    return rest


def _unet_key(key: str, layers: int, has_attention: list[bool]) -> str:
    name, _, param = key.rpartition(".")
    if name in _UNET_FIXED:
        return f"{_UNET_FIXED[name]}.{param}"
    per_block = layers + 1
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * per_block + int(m[2])}.0.{_resnet(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * per_block + int(m[2])}.1.{m[3]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per_block}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * per_block + int(m[2])}.0.{_resnet(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * per_block + int(m[2])}.1.{m[3]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        return f"output_blocks.{block * per_block + layers}.{2 if has_attention[block] else 1}.conv.{m[2]}"
    raise KeyError(f"no LDM name for the UNet weight {key}")


def _vae_key(key: str, up_blocks: int) -> str:
    part, _, rest = key.partition(".")  # encoder / decoder / quant_conv / post_quant_conv
    name, _, param = rest.rpartition(".")
    if part in ("quant_conv", "post_quant_conv") or name in ("conv_in", "conv_out"):
        return key
    if name in _VAE_FIXED:
        return f"{part}.{_VAE_FIXED[name]}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest):
        return f"{part}.down.{m[1]}.block.{m[2]}.{_resnet_vae(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", rest):
        return f"{part}.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest):
        return f"{part}.up.{up_blocks - 1 - int(m[1])}.block.{m[2]}.{_resnet_vae(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", rest):
        return f"{part}.up.{up_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", rest):
        return f"{part}.mid.block_{int(m[1]) + 1}.{_resnet_vae(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", rest):
        inner = m[1]
        for new, old in _VAE_ATTENTION:
            if inner.startswith(new + "."):
                inner = old + inner[len(new) :]
        return f"{part}.mid.attn_1.{inner}"
    raise KeyError(f"no LDM name for the VAE weight {key}")


def _resnet_vae(rest: str) -> str:
    return rest.replace("conv_shortcut", "nin_shortcut") if rest.startswith("conv_shortcut.") else rest
