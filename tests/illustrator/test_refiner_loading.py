"""Loading the refiner LLM from a folder, a .gguf file, or failing with a plain sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from illustrator.errors import ModelUnavailable
from illustrator.offline import build_offline_refiner_model
from illustrator.plan import ChatMessage, RefinerState
from illustrator.refiner import LLMRefiner
from illustrator.refiner_loading import load_refiner


@pytest.fixture(scope="module")
def refiner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_offline_refiner_model(tmp_path_factory.mktemp("models") / "refiner")


def write_gguf(model: Any, tokenizer: Any, path: Path) -> Path:
    """Write a transformers Qwen2 model and its byte-level tokenizer as a float32 GGUF file (llama.cpp layout)."""
    gguf = pytest.importorskip("gguf")
    config = model.config
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_embedding_length(config.hidden_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    control = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_scores([0.0] * len(tokens))  # no merges: the reader derives none from equal scores
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to the embeddings: a GGUF without output.weight means tied
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_loads_from_a_local_folder(refiner_folder: Path) -> None:
    model, tokenizer = load_refiner(str(refiner_folder))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert not model.training and model.dtype == torch.float32
    assert model.generation_config.use_cache is True
    assert tokenizer.pad_token is not None and tokenizer.eos_token == "<|im_end|>"
    plan = LLMRefiner(model, tokenizer, name="tiny", max_new_tokens=8).refine(
        [ChatMessage("user", "a fox in the snow")], RefinerState()
    )
    assert "fox" in plan.prompt  # the random weights ramble; the fallback answered


def test_dtype_is_honoured(refiner_folder: Path) -> None:
    model, _ = load_refiner(str(refiner_folder), dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_loads_from_a_gguf_file(refiner_folder: Path, tmp_path: Path) -> None:
    model, tokenizer = load_refiner(str(refiner_folder))
    path = write_gguf(model, tokenizer, tmp_path / "tiny-qwen2-f32.gguf")

    gguf_model, gguf_tokenizer = load_refiner(str(path))
    text = "A mermaid, héllo <|im_end|>"
    ids = tokenizer(text)["input_ids"]
    assert gguf_tokenizer(text)["input_ids"] == ids
    assert gguf_tokenizer.eos_token == "<|im_end|>" and gguf_tokenizer.chat_template
    with torch.inference_mode():
        expected = model(torch.tensor([ids])).logits
        actual = gguf_model(torch.tensor([ids])).logits
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("/no/such/folder", "there is no such file or folder"),
        ("./missing-model", "there is no such file or folder"),
        ("/no/such/model.gguf", "there is no such file"),
        ("", "No refiner model was given"),
    ],
)
def test_missing_sources_say_so_plainly(source: str, reason: str) -> None:
    with pytest.raises(ModelUnavailable, match=reason):
        load_refiner(source)


def test_hub_id_without_network_is_unavailable() -> None:
    with pytest.raises(ModelUnavailable, match=r"^Could not load the refiner model 'someone/not-a-model': .+\.$"):
        load_refiner("someone/not-a-model")


def test_broken_folder_is_unavailable(refiner_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (broken / name).write_bytes((refiner_folder / name).read_bytes())
    (broken / "config.json").write_text("{ this is not json")
    with pytest.raises(ModelUnavailable) as caught:
        load_refiner(str(broken))
    message = str(caught.value)
    assert message.startswith(f"Could not load the refiner model '{broken}': ") and message.endswith(".")
    assert "\n" not in message and len(message) < 400
    assert caught.value.__cause__ is not None


def test_broken_gguf_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelUnavailable, match=r"^Could not load the refiner model '.*model\.gguf': "):
        load_refiner(str(path))
