"""How fast a ~20,000-character passage with 30 pictures exports as a manuscript: `python -m benchmarks.manuscript`."""

from __future__ import annotations

import re
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from illustrator.manuscript import build_manuscript, export_manuscript
from illustrator.service import MessageView, PictureView, SessionView
from illustrator.story import Beat, describe_beat

PARAGRAPH = (
    "Elena walked down to the harbour at dusk, where the fishing boats rocked against the quay and the gulls called "
    "over the water. She carried a lantern and a letter she had not yet opened, and she did not look back. "
)


def _picture(folder: Path, number: int, kind: str) -> PictureView:
    path = folder / f"picture-{number}.png"
    if kind == "noise":  # incompressible: the worst case for every format
        image = Image.effect_noise((512, 512), 40 + number).convert("RGB")
    else:
        image = Image.linear_gradient("L").resize((512, 512)).rotate(number * 11).convert("RGB")
    image.save(path)
    return PictureView(
        id=number, session_id="a" * 32, file_name=path.name, path=path, turn=number, prompt=f"beat {number}",
        negative_prompt="", action="new", strength=None, seed=number, steps=1, guidance_scale=0.0, width=512,
        height=512, model="offline", parent_id=None, created_at=datetime.now(timezone.utc),
    )  # fmt: skip


def main() -> None:
    """Print the seconds each format takes (best of 2) for noise and for smooth pictures."""
    passage = "\n\n".join(f"Chapter {n}\n\n" + PARAGRAPH * 3 for n in range(1, 31))
    starts = [m.start() for m in re.finditer(r"Chapter \d+", passage)]
    ends = [*(s - 2 for s in starts[1:]), len(passage)]
    with tempfile.TemporaryDirectory() as temp:
        for kind in ("noise", "smooth"):
            folder = Path(temp) / kind
            folder.mkdir()
            pictures = [_picture(folder, n + 1, kind) for n in range(30)]
            beats = [
                Beat(**{**describe_beat(passage, s, e).to_dict(), "who": (), "picture_id": p.id})
                for s, e, p in zip(starts, ends, pictures, strict=True)
            ]
            messages = [MessageView(p.id, "assistant", "Here it is.", p.id, None, p) for p in pictures]
            manuscript = build_manuscript(SessionView("a" * 32, "Harbour", messages, pictures[-1]), passage, beats)
            seconds = {}
            for fmt in ("html", "epub", "pdf", "zip"):
                runs = []
                for _ in range(2):
                    began = time.perf_counter()
                    export_manuscript(manuscript, folder / "out", fmt)
                    runs.append(time.perf_counter() - began)
                seconds[fmt] = round(min(runs), 2)
            size = sum(p.path.stat().st_size for p in pictures) / len(pictures) / 1024
            print(f"{kind}: {len(passage)} chars, 30 pictures of {size:.0f} KiB: {seconds}")


if __name__ == "__main__":
    main()
