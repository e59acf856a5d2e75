"""The optional CLIP check of a picture: a tiny real CLIPModel (seeded random weights, so it scores noise) tests the
wiring and the threshold, not the judgement."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from illustrator.models import load_generator, sheet_refiner
from illustrator.picture_check import PictureCheck, lost_phrases, phrases_to_check
from illustrator.refiner import FallbackRefiner
from illustrator.service import TurnService
from illustrator.settings import Settings
from storage.db import create_db
from storage.files import PictureFiles
from tests.illustrator.refining.test_sheet_turns import play
from tests.illustrator.test_service import StaticModels


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP (text and vision towers) with seeded random weights, saved with its processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from illustrator.offline_image import build_clip_tokenizer

    tokenizer = build_clip_tokenizer()
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "projection_dim": 16,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8, "projection_dim": 16},
        projection_dim=16,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(config).eval().save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_the_phrases_checked_are_the_locked_and_established_looks() -> None:
    plans = play("Meet Kael: shaved head, crow tattoo, leather jacket", "keep his tattoo", "make his jacket red")
    checked = phrases_to_check(plans[1].sheet, plans[2].sheet)
    assert checked == [("Kael", "shaved head"), ("Kael", "crow tattoo")]  # the jacket was just asked for
    assert phrases_to_check(None, plans[0].sheet) == []  # a first picture establishes, nothing to lose yet
    assert lost_phrases({"a": 0.3, "b": 0.1, "c": 0.15}, 0.2) == ["b", "c"]


def test_a_tiny_clip_scores_each_phrase_and_the_threshold_decides(tiny_clip: Path) -> None:
    plans = play("Meet Kael: shaved head, crow tattoo, leather jacket", "make his jacket red")
    picture = Image.new("RGB", (64, 64), (120, 30, 30))
    scores = PictureCheck(str(tiny_clip)).scores(picture, ["shaved head", "crow tattoo"])
    assert set(scores) == {"shaved head", "crow tattoo"} and all(-1.0 <= s <= 1.0 for s in scores.values())
    assert PictureCheck(str(tiny_clip), threshold=-1.01).notes(picture, plans[0].sheet, plans[1].sheet) == []
    lost = PictureCheck(str(tiny_clip), threshold=1.01).notes(picture, plans[0].sheet, plans[1].sheet)
    assert lost == [
        f"The picture may have lost Kael's {p} (picture check)." for p in sorted(scores, key=lambda p: scores[p])
    ]


def test_a_clip_model_that_cannot_be_had_leaves_the_check_off(tmp_path: Path) -> None:
    check = PictureCheck(str(tmp_path / "no-such-model"), threshold=1.01)
    plans = play("Meet Kael: shaved head, crow tattoo", "make his tattoo red")
    assert check.notes(Image.new("RGB", (32, 32)), plans[0].sheet, plans[1].sheet) == []


def test_the_turn_says_what_the_picture_check_saw_only_when_configured(data_dir: Path, tiny_clip: Path) -> None:
    generator = load_generator(Settings(data_dir=data_dir / "models", offline=True), [])

    def service(clip: str | None, threshold: float) -> TurnService:
        settings = Settings(data_dir=data_dir, offline=True, clip_model=clip, clip_threshold=threshold)
        models = StaticModels(settings, generator, sheet_refiner(FallbackRefiner(), generator))
        db = create_db(settings.resolved_database_url)
        return TurnService(settings, db, PictureFiles(settings.pictures_dir), models)

    strict = service(str(tiny_clip), 1.01)  # every score is under it: everything established "looks lost"
    first = strict.send(None, "Meet Kael: shaved head, crow tattoo, leather jacket")
    assert "picture check" not in first.reply.content  # nothing was established before the first picture
    edited = strict.send(first.session_id, "make his jacket red")
    assert "The picture may have lost Kael's crow tattoo (picture check)." in edited.reply.content
    assert "red leather jacket" not in edited.reply.content.split("(picture check)")[0]

    off = service(None, 1.01)  # no CLIP model configured: no check
    plain = off.send(first.session_id, "make his jacket blue")
    assert "picture check" not in plain.reply.content
