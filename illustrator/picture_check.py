"""The optional drift check on the picture itself: an image-text model (CLIP) scores the drawn picture against each
locked or established look on the sheet, and a look that scores low is named in the turn's reply.

Off unless a CLIP model is configured (`--clip-model`: a hub id or a local folder). The sheet-level drift check
(illustrator/refining/turn.py) always runs; this one only adds what the picture seems to have lost.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from illustrator.refining.sheet import Sheet

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# CLIP ViT-B/32's cosine similarity of a picture with a phrase it shows is mostly 0.25-0.35, and below 0.2 with one it
# does not show; a phrase under the threshold "looks lost".
DEFAULT_CLIP_THRESHOLD = 0.2
MAX_PHRASES = 12


def phrases_to_check(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(whose, phrase) for each value the picture should still show: locked, or established before this turn and kept.

    A value the writer just set is not checked: the drift check is about what was meant to stay.
    """
    if not after:
        return []
    new, old = Sheet.from_dict(after), Sheet.from_dict(before) if before else Sheet()
    found: list[tuple[str, str]] = []
    for subject in new.visible_subjects():
        earlier = old.subject(subject.key)
        for name, value in subject.attributes.items():
            kept = earlier is not None and name in earlier.attributes and earlier.attributes[name].text == value.text
            if value.locked or kept:
                found.append((subject.name, value.text))
    return found[:MAX_PHRASES]


def lost_phrases(scores: dict[str, float], threshold: float) -> list[str]:
    """The phrases whose score is under the threshold, lowest first."""
    return [phrase for phrase, score in sorted(scores.items(), key=lambda item: item[1]) if score < threshold]


class PictureCheck:
    """A CLIP model, loaded on first use, that scores a picture against phrases (cosine similarity, -1 to 1)."""

    def __init__(self, model: str, *, threshold: float = DEFAULT_CLIP_THRESHOLD, device: str = "cpu") -> None:
        self.model_id = model
        self.threshold = threshold
        self.device = device
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._failed = False

    def _load(self) -> tuple[Any, Any] | None:
        with self._lock:
            if self._loaded is None and not self._failed:
                from transformers import CLIPModel, CLIPProcessor

                try:
                    loaded: Any = CLIPModel.from_pretrained(self.model_id)
                    model = loaded.to(self.device).eval()
                    processor = CLIPProcessor.from_pretrained(self.model_id)
                except (OSError, ValueError) as e:  # not cached, no hub, not a CLIP folder: the check stays off
                    logger.warning("The picture check is off: CLIP model %s could not be loaded: %s", self.model_id, e)
                    self._failed = True
                    return None
                self._loaded = (model, processor)
            return self._loaded

    def scores(self, image: Image.Image, phrases: list[str]) -> dict[str, float]:
        """The cosine similarity of the picture with each phrase ({} when the model cannot be had)."""
        loaded = self._load() if phrases else None
        if loaded is None:
            return {}
        import torch

        model, processor = loaded
        inputs = processor(text=phrases, images=image.convert("RGB"), return_tensors="pt", padding=True)
        with torch.inference_mode():
            text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            picture = model.get_image_features(pixel_values=inputs["pixel_values"].to(model.dtype))
        text = torch.nn.functional.normalize(_tensor(text), dim=-1)
        picture = torch.nn.functional.normalize(_tensor(picture), dim=-1)
        similarity = (text @ picture.T).squeeze(-1).tolist()
        return {phrase: float(score) for phrase, score in zip(phrases, similarity, strict=True)}

    def notes(self, image: Image.Image, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
        """A line per locked or established look the picture seems to have lost ([] when none, or no model)."""
        wanted = phrases_to_check(before, after)
        try:
            scores = self.scores(image, [phrase for _, phrase in wanted])
        except Exception:  # a turn never fails because the check did
            logger.warning("The picture check failed; the turn goes on without it.", exc_info=True)
            return []
        whose = {phrase: name for name, phrase in wanted}
        lost = lost_phrases(scores, self.threshold)
        return [f"The picture may have lost {_possessive(whose[p])} {p} (picture check)." for p in lost]


def _tensor(output: Any) -> Any:
    """transformers 5 may return a model output instead of a tensor: its pooled features."""
    return output if hasattr(output, "shape") else output.pooler_output


def _possessive(name: str) -> str:
    return f"{name}'s" if name[:1].isupper() else f"the {name}'s"
