"""The refiner's KV caches kept between turns (illustrator/refiner_cache.py) on a tiny real Qwen2: the same text as
plain greedy decoding, with only the new part of each prompt prefilled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from illustrator.offline import build_offline_refiner_model
from illustrator.plan import ChatMessage, RefinerState
from illustrator.refiner import LLMRefiner
from illustrator.refiner_cache import KeptCaches, decode_greedy

from .test_refiner_speed import MERMAID, PLAN, count_passes

GIRL = RefinerState(last_prompt="a girl, long red hair, green cloak", has_picture=True)


@pytest.fixture
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_offline_refiner_model(tmp_path_factory.getbasetemp() / "cache-refiner")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


class _Script:
    """Scores that make every greedy choice the next token of `script`, from the prompt's end on."""

    def __init__(self, script: list[int], start: int) -> None:
        self.script, self.start = script, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.script[min(input_ids.shape[1] - self.start, len(self.script) - 1)]] = 0.0
        return forced


def _conversations() -> list[tuple[list[ChatMessage], RefinerState]]:
    first = [ChatMessage("user", MERMAID)]
    second = [*first, ChatMessage("assistant", "Here she is."), ChatMessage("user", "make her hair red")]
    return [(first, RefinerState()), (second, GIRL)]


def test_kept_caches_write_exactly_what_plain_greedy_decoding_writes(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm  # random weights: it rambles, often back into the prompt's own text
    plain = LLMRefiner(model, tokenizer, name="plain", prompt_lookup_tokens=0, cache_prefix=False, max_new_tokens=40)
    kept = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=40)
    no_lookup = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, prompt_lookup_tokens=0, max_new_tokens=40)
    for conversation, state in _conversations() * 2:
        messages = plain.build_messages(conversation, state)
        expected = plain._generate_text(messages)
        assert len(expected) > 20
        assert kept._generate_text(messages) == expected
        assert no_lookup._generate_text(messages) == expected


def test_a_later_turn_prefills_only_what_its_prompt_does_not_share_with_a_kept_one(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    refiner = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=8, max_context_tokens=4096)
    passes = count_passes(model)
    (first, state), (second, later_state) = _conversations()
    total = len(tokenizer(refiner.prompt_text(first, state))["input_ids"])
    refiner._generate_text(refiner.build_messages(first, state))
    assert refiner.last_prefill_tokens == total and passes[0] >= total  # nothing kept yet (+ proposed tokens)
    passes.clear()
    refiner._generate_text(refiner.build_messages(first, state))  # the same prompt again: one token to compute
    assert refiner.last_prefill_tokens == 1 and passes[0] <= 1 + refiner.prompt_lookup_tokens
    passes.clear()
    second_total = len(tokenizer(refiner.prompt_text(second, later_state))["input_ids"])
    refiner._generate_text(refiner.build_messages(second, later_state))
    assert refiner.last_prefill_tokens < second_total - 1000  # the system prompt came from the kept cache
    assert passes[0] <= refiner.last_prefill_tokens + refiner.prompt_lookup_tokens


def test_warming_after_a_turn_leaves_the_next_turn_only_its_new_message(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    refiner = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=8, max_context_tokens=4096)
    conversation = [ChatMessage("user", MERMAID)]
    computed = refiner.warm(conversation, RefinerState())
    assert computed == len(tokenizer(refiner.prompt_text(conversation, RefinerState()))["input_ids"])
    assert refiner.warm(conversation, RefinerState()) == 0  # kept: nothing left to compute
    refiner._generate_text(refiner.build_messages(conversation, RefinerState()))
    assert refiner.last_prefill_tokens == 1


def test_a_scripted_plan_stops_where_greedy_stops_in_fewer_passes(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    script = tokenizer(PLAN + "\n\nmore text", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    refiner = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=300, max_context_tokens=4096)
    refiner.scores_hook = lambda start: _Script(script, start)
    passes = count_passes(model)
    assert refiner._generate_text(refiner.build_messages([ChatMessage("user", MERMAID)], RefinerState())) == PLAN
    assert len(passes) < len(tokenizer(PLAN)["input_ids"]) / 2  # prompt lookup: most of the plan is copied


def test_kept_caches_hand_over_a_full_match_copy_a_partial_one_and_keep_only_a_few(tiny_llm: tuple[Any, Any]) -> None:
    from transformers import DynamicCache

    model, _ = tiny_llm
    caches = KeptCaches(capacity=2)

    def filled(ids: list[int]) -> Any:
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True)
        return cache

    ids = list(range(40, 80))
    caches.keep(ids, filled(ids))
    cache, length = caches.take(ids[:30] + [5, 6])  # shares 30 tokens: a cropped copy, the original stays
    assert length == 30 and cache.get_seq_length() == 30 and len(caches) == 1
    cache, length = caches.take([*ids, 7])  # shares all: handed over
    assert length == 40 and len(caches) == 0
    assert caches.take(list(range(150, 190))) == (None, 0)
    for start in (1, 120, 200):
        caches.keep(list(range(start, start + 20)), filled(list(range(start, start + 20))))
    assert len(caches) == 2 and caches.take(list(range(1, 30)))[0] is None  # the oldest went
    with pytest.raises(ValueError, match="capacity"):
        KeptCaches(capacity=0)


def test_decode_greedy_stops_at_the_token_limit(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    ids = tokenizer("a mermaid near a waterfall, a mermaid near a", add_special_tokens=False)["input_ids"]
    decoded = decode_greedy(model, ids, caches=None, max_new_tokens=5, stop=lambda new: False)
    assert len(decoded.tokens) == 5 and decoded.reused == 0


def test_a_model_whose_cache_cannot_be_cut_back_decodes_as_before(tiny_llm: tuple[Any, Any]) -> None:
    from transformers import MambaConfig, MambaForCausalLM

    _, tokenizer = tiny_llm
    torch.manual_seed(0)
    model = MambaForCausalLM(MambaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1)).eval()
    plain = LLMRefiner(model, tokenizer, name="plain", prompt_lookup_tokens=0, cache_prefix=False, max_new_tokens=12)
    kept = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=12)
    messages = plain.build_messages([ChatMessage("user", MERMAID)], RefinerState())
    assert kept._generate_text(messages) == plain._generate_text(messages)  # a recurrent state: nothing to cut
    assert kept.kept is None  # it does not try again at every turn
    assert kept._generate_text(messages) == plain._generate_text(messages)


def test_after_a_turn_the_service_prepares_the_next_so_that_it_prefills_only_the_new_message(
    tiny_llm: tuple[Any, Any], data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from illustrator.models import load_generator
    from illustrator.settings import Settings

    from .test_service import make_service

    model, tokenizer = tiny_llm
    generator = load_generator(Settings(data_dir=tmp_path_factory.mktemp("models"), offline=True), [])
    refiner = LLMRefiner(model, tokenizer, name="kept", keep_caches=True, max_new_tokens=8, max_context_tokens=4096)
    service, _ = make_service(data_dir, generator, refiner)
    first = service.send(None, MERMAID)
    service.wait_until_prepared()
    assert refiner.kept is not None and len(refiner.kept) == 2  # the first call's cache, and the prepared one
    service.send(first.session_id, "make her hair red")
    conversation = [
        ChatMessage("user", MERMAID),
        ChatMessage("assistant", first.reply.content),
        ChatMessage("user", "make her hair red"),
    ]
    state = RefinerState(first.picture.prompt, first.picture.negative_prompt, has_picture=True)
    total = len(tokenizer(refiner.prompt_text(conversation, state))["input_ids"])
    assert refiner.last_prefill_tokens < 100 < total / 10  # the new message and the prompt's tail only
