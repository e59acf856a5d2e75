"""The `illustrator` command as a script would use it: a real subprocess, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from storage.pngmeta import read_png_metadata


def run_cli(*args: str, stdin: str = "", data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args, "--data-dir", str(data_dir), "--offline"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_refine_prints_a_plan(data_dir: Path) -> None:
    conversation = [
        {"role": "user", "content": "a mermaid sitting near a waterfall under a starlit sky"},
        {"role": "assistant", "content": "Here she is."},
        {"role": "user", "content": "make her hair red"},
    ]
    result = run_cli(
        "refine", "--last-prompt", "a mermaid near a waterfall", stdin=json.dumps(conversation), data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["action"] == "edit"
    assert "red hair" in plan["prompt"] and "make her" not in plan["prompt"]
    assert set(plan) >= {"prompt", "negative_prompt", "action", "strength", "reply", "sheet", "changes"}
    assert "+ red hair" in plan["changes"] and plan["sheet"]["focus"] == "mermaid"


def test_refine_continues_from_a_story_sheet(data_dir: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.json"
    sheet.write_text(
        json.dumps(
            {
                "cast": [{"key": "girl", "name": "girl", "attributes": {"hair": "blue hair"}}],
                "visible": ["girl"],
                "focus": "girl",
            }
        )
    )
    conversation = [{"role": "user", "content": "make her hair red"}]
    result = run_cli("refine", "--sheet", str(sheet), stdin=json.dumps(conversation), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (
        plan["changes"] == ["hair: blue → red"] and plan["sheet"]["cast"][0]["attributes"]["hair"]["text"] == "red hair"
    )


def test_refine_refuses_what_is_not_a_conversation(data_dir: Path) -> None:
    result = run_cli("refine", stdin="not json", data_dir=data_dir)
    assert result.returncode == 1
    assert "Expected a JSON list" in result.stderr and "Traceback" not in result.stderr


def test_generate_writes_a_png(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lighthouse.png"
    result = run_cli("generate", "a lighthouse on a cliff", "-o", str(out), "--seed", "7", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "placeholder" in result.stdout
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (256, 256)
    parameters = read_png_metadata(out)["parameters"]
    assert parameters.startswith("a lighthouse on a cliff") and "Seed: 7" in parameters
