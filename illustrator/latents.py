"""The latents of recently drawn pictures, kept in memory so that editing one skips the VAE encode."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEFAULT_CAPACITY = 256  # a 512x512 picture's latents are 32 KB in bfloat16: a whole long session fits


class LatentCache:
    """A thread-safe, least-recently-used map from a picture's file name to the latents it was decoded from.

    Keyed by file name, which is random and never reused (a database id can be, after a delete). Only memory: after a
    restart an edit encodes the stored PNG once, as it always could. Latents are kept with the model that drew them,
    so one model's latents never go to another.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}.")
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, file_name: str, latents: torch.Tensor, *, model_name: str) -> None:
        """Keep the latents of a picture drawn by `model_name`, forgetting the least recently used beyond capacity."""
        with self._lock:
            self._items[file_name] = (model_name, latents)
            self._items.move_to_end(file_name)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, file_name: str, *, model_name: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The latents of a picture, if they are kept, were drawn by `model_name` and have `shape`; else None."""
        with self._lock:
            item = self._items.get(file_name)
            if item is None:
                return None
            self._items.move_to_end(file_name)
        kept_by, latents = item
        if kept_by != model_name or tuple(latents.shape) != tuple(shape):
            return None
        return latents

    def __len__(self) -> int:
        return len(self._items)
