"""The refiner's KV caches kept between turns, and a greedy decoder with prompt lookup that starts from one.

A conversation's prompt grows at its end: much of turn n+1's prompt is turn n's. Keeping the KV cache of each call
and cropping it to the longest start it shares with the next prompt means that a turn prefills only what changed.
transformers (5.24) cannot combine a filled cache with its assisted (prompt-lookup) decoding, so greedy decoding with
prompt lookup is done here: after a matching n-gram, the tokens that followed it are proposed and the model checks
them all in one pass; only tokens greedy decoding would have chosen one by one are kept.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

# (token ids so far, scores of the next token: shape 1 x vocabulary) -> the scores to choose from
ScoresHook = Callable[[Any, Any], Any]

MIN_REUSE_TOKENS = 16  # a shorter common start is not worth a copy of the cache
NGRAM = 3  # prompt lookup matches the last 3 tokens (then 2, then 1), as transformers' default does


class _Entry(NamedTuple):
    ids: list[int]
    cache: Any


class Decoded(NamedTuple):
    """What one greedy decode produced, and what it cost."""

    tokens: list[int]  # the new tokens (may run past where the caller stops: cut them there)
    reused: int  # prompt tokens taken from a kept cache
    passes: int  # forward passes of the model, the prefill included


class KeptCaches:
    """The KV caches of the last few prompts (with their answers), each with the token ids it holds."""

    def __init__(self, capacity: int = 4) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}.")
        self.capacity = capacity
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, ids: list[int]) -> tuple[Any | None, int]:
        """A cache holding the longest start of `ids` that a kept one shares (at least 16 tokens), and its length.

        A cache used in full is handed over (it is extended by the caller and kept again); one used in part is copied,
        so that it still serves the prompts it fits better (another session's, the system prompt's).
        """
        with self._lock:
            best, length = None, 0
            for entry in self._entries:
                shared = _common_start(entry.ids, ids)
                if shared > length:
                    best, length = entry, shared
            length = min(length, len(ids) - 1)  # the model must see at least one prompt token to answer
            if best is None or length < MIN_REUSE_TOKENS:
                return None, 0
            if length == len(best.ids):
                self._entries.remove(best)
                cache = best.cache
            else:
                cache = copy.deepcopy(best.cache)
        _crop(cache, length)
        return cache, length

    def keep(self, ids: list[int], cache: Any) -> None:
        """Keep `cache`, which holds exactly `ids`; the oldest kept one goes when there are too many."""
        if cache is None or cache.get_seq_length() != len(ids):
            return
        with self._lock:
            self._entries = [entry for entry in self._entries if entry.ids != ids]
            self._entries.append(_Entry(list(ids), cache))
            del self._entries[: -self.capacity]

    def clear(self) -> None:
        """Forget every kept cache (the model or its dtype changed)."""
        with self._lock:
            self._entries.clear()


def decode_greedy(
    model: Any,
    ids: list[int],
    *,
    caches: KeptCaches | None,
    max_new_tokens: int,
    stop: Callable[[list[int]], bool],
    lookup_tokens: int = 10,
    scores_hook: ScoresHook | None = None,
) -> Decoded:
    """Greedy decoding of `ids` from the best kept cache, with prompt lookup; the cache is kept again afterwards."""
    import torch
    from transformers import DynamicCache

    cache, reused = caches.take(ids) if caches is not None else (None, 0)
    if cache is None:
        cache = DynamicCache(config=model.config)
    tokens, new = list(ids), list[int]()
    pending = tokens[reused:]  # in the sequence, not yet in the cache
    passes, proposing = 0, lookup_tokens
    with torch.inference_mode():
        while len(new) < max_new_tokens:
            candidates = _lookup(tokens, min(proposing, max_new_tokens - len(new) - 1)) if proposing > 0 else []
            feed = torch.tensor([pending + candidates], device=model.device)
            logits = model(input_ids=feed, cache=cache, use_cache=True, logits_to_keep=len(candidates) + 1).logits[0]
            passes += 1
            accepted = _verify(logits, tokens, candidates, scores_hook)
            _crop(cache, len(tokens) + len(accepted) - 1)  # the last accepted token is fed on the next pass
            tokens += accepted
            new += accepted
            pending = [accepted[-1]]
            if candidates:  # propose more after a full match, fewer after a miss (as transformers' heuristic does)
                hit = len(accepted) > len(candidates)
                proposing = min(lookup_tokens, proposing + 2) if hit else max(1, proposing - 1)
            if stop(new):
                break
    if caches is not None:
        caches.keep(tokens[: cache.get_seq_length()], cache)
    return Decoded(new[:max_new_tokens], reused, passes)


def prefill(model: Any, ids: list[int], caches: KeptCaches) -> int:
    """Compute and keep the KV cache of `ids` ahead of time (e.g. after a turn, while the writer reads and types).

    Returns how many tokens were computed (the rest came from a kept cache).
    """
    import torch
    from transformers import DynamicCache

    cache, reused = caches.take(ids + [-1])  # the sentinel lets a cache holding all of `ids` be used
    if cache is None:
        cache = DynamicCache(config=model.config)
    if reused < len(ids):
        with torch.inference_mode():
            model(input_ids=torch.tensor([ids[reused:]], device=model.device), cache=cache, use_cache=True)
    caches.keep(ids, cache)
    return len(ids) - reused


def _verify(logits: Any, tokens: list[int], candidates: list[int], scores_hook: ScoresHook | None) -> list[int]:
    """The greedy choices at each checked position, up to and including the first that differs from a candidate."""
    import torch

    accepted: list[int] = []
    for row in range(len(candidates) + 1):
        scores = logits[row : row + 1].float()
        if scores_hook is not None:
            scores = scores_hook(torch.tensor([tokens + accepted]), scores)
        choice = int(scores.argmax(-1)[0])
        accepted.append(choice)
        if row == len(candidates) or choice != candidates[row]:
            break
    return accepted


def _lookup(tokens: list[int], count: int) -> list[int]:
    """Up to `count` tokens that followed the latest earlier occurrence of the sequence's last n-gram."""
    if count <= 0:
        return []
    for size in range(NGRAM, 0, -1):
        if len(tokens) <= size:
            continue
        tail = tokens[-size:]
        for start in range(len(tokens) - size - 1, -1, -1):
            if tokens[start : start + size] == tail:
                return tokens[start + size : start + size + count]
    return []


def _crop(cache: Any, length: int) -> None:
    """Cut `cache` to its first `length` tokens (transformers 5 crops by a negative count of tokens to drop)."""
    excess = cache.get_seq_length() - length
    if excess > 0:
        cache.crop(-excess)


def _common_start(a: list[int], b: list[int]) -> int:
    length = min(len(a), len(b))
    return next((i for i in range(length) if a[i] != b[i]), length)
