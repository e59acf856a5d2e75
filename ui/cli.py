"""The `illustrator` command: serve the app, refine a conversation, or draw one picture."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from illustrator.errors import IllustratorError, InvalidInput
from illustrator.settings import (
    AUTO,
    DECODERS,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_REFINER_MODEL,
    QUANTIZATIONS,
    Settings,
)
from ui.story_cli import COMMANDS as STORY_COMMANDS
from ui.story_cli import add_story_commands, run_story_command

logger = logging.getLogger(__name__)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get("ILLUSTRATOR_DATA_DIR", Path.home() / ".illustrator")),
        help="where sessions, pictures and locally built models are kept (default: ~/.illustrator)",
    )
    parser.add_argument(
        "--image-model",
        default=env.get("ILLUSTRATOR_IMAGE_MODEL", DEFAULT_IMAGE_MODEL),
        help="hub id, local diffusers folder, single-file .safetensors checkpoint, or 'offline'",
    )
    parser.add_argument(
        "--refiner-model",
        default=env.get("ILLUSTRATOR_REFINER_MODEL", DEFAULT_REFINER_MODEL),
        help="hub id, local folder, .gguf file, 'offline', or 'none' (built-in rules only)",
    )
    parser.add_argument(
        "--clip-model",
        default=env.get("ILLUSTRATOR_CLIP_MODEL") or None,
        help="optional CLIP model (hub id or folder) that checks each picture for a locked or established look it "
        "lost, e.g. openai/clip-vit-base-patch32 (default: off)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        default=env.get("ILLUSTRATOR_OFFLINE", "") not in ("", "0"),
        help="use the built-in offline preset (tiny placeholder models) without trying the configured ones",
    )
    parser.add_argument(
        "--database-url",
        default=env.get("ILLUSTRATOR_DATABASE_URL") or None,
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/illustrator (default: SQLite in the data folder)",
    )
    parser.add_argument("--device", default=env.get("ILLUSTRATOR_DEVICE", "auto"), help="auto, cpu, cuda, mps")
    parser.add_argument(
        "--dtype", default=env.get("ILLUSTRATOR_DTYPE", "auto"), help="auto, float32, float16, bfloat16"
    )
    parser.add_argument(
        "--fast-decoder",
        default=env.get("ILLUSTRATOR_FAST_DECODER", AUTO),
        help="TAESD for live previews: hub id or local folder, 'auto' (madebyollin/taesd; taesdxl for SDXL) or 'none'",
    )
    parser.add_argument(
        "--decoder",
        choices=DECODERS,
        default=env.get("ILLUSTRATOR_DECODER", AUTO),
        help="what decodes the final pictures: 'fast' (TAESD, about 10x faster on a CPU, a little softer), "
        "'full' (the model's VAE) or 'auto' (fast on the CPU, full on a GPU)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=env.get("ILLUSTRATOR_QUANTIZE", "none"),
        help="int8 for the UNet's linear layers with torchao (opt-in; see docs/PERFORMANCE.md)",
    )


def _add_picture_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument(
        "--steps",
        type=_positive_int,
        default=env.get("ILLUSTRATOR_STEPS"),
        help="steps per picture (default: the model's: 1 for turbo models, 25 for others)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=env.get("ILLUSTRATOR_SIZE"),
        help="picture size WIDTHxHEIGHT, multiples of 8 (default: the model's native size)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a size like 512x512, not {text!r}") from e
    if width < 64 or height < 64 or width % 8 or height % 8:
        raise argparse.ArgumentTypeError(f"width and height must be multiples of 8 of at least 64, not {text!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="illustrator", description="Illustrate your story by chatting.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True)

    env = os.environ
    serve = commands.add_parser("serve", help="serve the web app")
    _add_model_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    serve.add_argument("--port", type=int, default=int(os.environ.get("ILLUSTRATOR_PORT", 7860)))
    serve.add_argument("--listen", action="store_true", help="serve on the local network (host 0.0.0.0)")
    _add_picture_options(serve)
    serve.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="a login for the app (repeat for more); needed with --listen unless --no-login",
    )
    serve.add_argument(
        "--password-file",
        type=Path,
        default=env.get("ILLUSTRATOR_PASSWORD_FILE") or None,
        help="a file of logins, one NAME:PASSWORD per line",
    )
    serve.add_argument(
        "--no-login", action="store_true", help="serve on the network without a login (anyone on it can use the app)"
    )
    serve.add_argument(
        "--queue-size",
        type=int,
        default=int(env.get("ILLUSTRATOR_QUEUE_SIZE", 32)),
        help="how many turns may wait to be drawn before writers are told the app is busy (default: 32)",
    )

    _add_backend_options(serve)

    refine = commands.add_parser("refine", help="read a conversation (JSON list of {role, content}) on stdin")
    _add_model_options(refine)
    refine.add_argument("--last-prompt", default=None, help="the prompt of the picture the next turn would edit")
    refine.add_argument(
        "--sheet", type=Path, default=None, help="that picture's story sheet (JSON, as a plan shows it)"
    )

    evaluate = commands.add_parser("evaluate", help="score the refiner on the evaluation set (a table per property)")
    _add_model_options(evaluate)
    evaluate.add_argument(
        "--set", type=Path, default=None, help="evaluation set (default: assets/eval/refiner_eval.json)"
    )
    evaluate.add_argument("--flat", action="store_true", help="score the flat-prompt refiner, without the story sheet")
    evaluate.add_argument("--json", type=Path, default=None, help="also write the full results (every plan) here")

    generate = commands.add_parser("generate", help="draw one picture from a prompt into a PNG file")
    _add_model_options(generate)
    generate.add_argument("prompt")
    generate.add_argument("-o", "--output", type=Path, default=Path("picture.png"))
    generate.add_argument("--negative-prompt", default="")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--steps", type=int, default=None)
    generate.add_argument("--width", type=int, default=None)
    generate.add_argument("--height", type=int, default=None)
    _add_data_commands(commands)
    add_story_commands(commands, _add_model_options)
    return parser


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data_dir = Path(os.environ.get("ILLUSTRATOR_DATA_DIR", Path.home() / ".illustrator"))
    backup = commands.add_parser("backup", help="copy the database and pictures while the app runs (safe)")
    backup.add_argument("destination", type=Path, help="a new or empty folder")
    hashing = commands.add_parser("hash-password", help="read a password, print NAME:HASH for the password file")
    hashing.add_argument("name", nargs="?", default=None, help="the login name to print before the hash")
    recover = commands.add_parser("recover-pictures", help="bring set-aside pictures back into their sessions")
    for command in (backup, recover):
        command.add_argument(
            "--data-dir", type=Path, default=data_dir, help="the data folder (default: ~/.illustrator)"
        )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the parsed command line (which already folded in the environment)."""
    from illustrator.access import collect_logins

    host = "0.0.0.0" if getattr(args, "listen", False) else getattr(args, "host", "127.0.0.1")
    size = getattr(args, "size", None)
    if isinstance(size, str):  # from the environment: argparse does not convert defaults given as values
        size = _size(size)
    steps = getattr(args, "steps", None)
    if getattr(args, "queue_size", 32) < 1:
        raise InvalidInput("--queue-size must be at least 1.")
    return Settings(
        data_dir=args.data_dir.expanduser().resolve(),
        database_url=getattr(args, "database_url", None),
        image_model=args.image_model,
        refiner_model=args.refiner_model,
        clip_model=getattr(args, "clip_model", None) or None,
        offline=args.offline,
        device=args.device,
        dtype=args.dtype,
        fast_decoder=args.fast_decoder,
        decoder=args.decoder,
        quantize=getattr(args, "quantize", "none"),
        steps=int(steps) if steps else None,
        width=size[0] if size else getattr(args, "width", None),
        height=size[1] if size else getattr(args, "height", None),
        host=host,
        port=getattr(args, "port", 7860),
        queue_size=getattr(args, "queue_size", 32),
        logins=collect_logins(getattr(args, "auth", []), getattr(args, "password_file", None)),
        no_login=getattr(args, "no_login", False),
        **_backend_settings(args),
    )


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default=env.get("ILLUSTRATOR_BACKEND", "local"),
        help="where pictures are drawn: in this process (local, the default) or on a Ray Serve cluster (ray)",
    )
    parser.add_argument(
        "--ray-address",
        default=env.get("ILLUSTRATOR_RAY_ADDRESS", "auto"),
        help="the Ray cluster: auto (the one this machine belongs to), ray://HOST:PORT, or local (start one here)",
    )
    parser.add_argument("--ray-replicas", type=_positive_int, default=env.get("ILLUSTRATOR_RAY_REPLICAS", "1"))
    parser.add_argument(
        "--ray-gpus", type=float, default=env.get("ILLUSTRATOR_RAY_GPUS", "0"), help="GPUs per replica (0: CPU)"
    )
    parser.add_argument(
        "--turns-at-once",
        type=_positive_int,
        default=env.get("ILLUSTRATOR_TURNS_AT_ONCE"),
        help="turns drawn at the same time on the ray backend (default: one per replica; the local backend: 1)",
    )


def _backend_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The drawing backend's settings (serve only; the other commands draw in this process)."""
    if not hasattr(args, "backend"):
        return {}
    if args.backend not in ("local", "ray"):  # from the environment: argparse does not check defaults
        raise InvalidInput(f"The backend must be local or ray, not {args.backend!r}.")
    at_once = int(args.turns_at_once) if args.turns_at_once is not None else None
    if args.backend == "local" and at_once not in (None, 1):
        raise InvalidInput("--turns-at-once is for the ray backend: the local backend draws one at a time.")
    return {
        "backend": args.backend,
        "ray_address": args.ray_address,
        "ray_replicas": int(args.ray_replicas),
        "ray_gpus_per_replica": float(args.ray_gpus),
        "turns_at_once": at_once,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `illustrator` console script."""
    # Before torch loads OpenMP: idle threads sleep instead of spinning. On a CPU shared with other programs, spinning
    # threads starve each other and the refiner's token-by-token decode ran up to 8x slower (docs/PERFORMANCE.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command in ("backup", "recover-pictures", "hash-password"):
            return _data_command(args)
        settings = settings_from_args(args)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "refine":
            return _refine(settings, args)
        if args.command == "evaluate":
            return _evaluate(settings, args)
        if args.command in STORY_COMMANDS:
            return run_story_command(settings, args)
        return _generate(settings, args)
    except IllustratorError as e:
        print(f"illustrator: {e}", file=sys.stderr)
        return 1


def _data_command(args: argparse.Namespace) -> int:
    if args.command == "hash-password":
        import getpass

        from illustrator.access import hash_password

        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
        print(f"{args.name}:{hash_password(password)}" if args.name else hash_password(password))
        return 0
    data_dir = args.data_dir.expanduser().resolve()
    if args.command == "backup":
        from storage.backup import backup_data

        report = backup_data(data_dir / "illustrator.db", data_dir / "pictures", args.destination)
        print(f"Backed up {report.messages} message(s) and {report.pictures} picture(s) to {args.destination}.")
        return 0
    from storage.db import create_db
    from storage.files import PictureFiles
    from storage.setaside import recover_pictures

    db = create_db(f"sqlite:///{data_dir / 'illustrator.db'}")
    try:
        found = recover_pictures(db, PictureFiles(data_dir / "pictures"))
    finally:
        db.dispose()
    print(f"Brought back {found.restored} picture(s); {found.left} could not be placed and stay set aside.")
    return 0


def _serve(settings: Settings) -> int:
    from illustrator.access import check_access

    check_access(settings)  # before anything loads: no login on the network is refused at once
    from ui.server import lan_address, serve

    if settings.host == "0.0.0.0":
        address = lan_address()
        if address:
            print(f"Serving on the local network: open http://{address}:{settings.port}/ on another device.")
        else:
            print("Serving on all interfaces, but this machine has no local network address right now.")
    serve(settings)
    return 0


def _refine(settings: Settings, args: argparse.Namespace) -> int:
    from illustrator.models import load_refiner_for, sheet_refiner
    from illustrator.plan import ChatMessage, RefinerState

    try:
        raw = json.load(sys.stdin)
        conversation = [ChatMessage(m["role"], str(m["content"])) for m in raw]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InvalidInput('Expected a JSON list of {"role": ..., "content": ...} messages on stdin.') from e
    notices: list[str] = []
    refiner = sheet_refiner(load_refiner_for(settings, notices))  # the plan carries the change and the sheet
    for notice in notices:
        logger.warning(notice)
    sheet = _read_json(args.sheet) if args.sheet else None
    state = RefinerState(
        last_prompt=args.last_prompt, has_picture=args.last_prompt is not None or sheet is not None, sheet=sheet
    )
    print(json.dumps(refiner.refine(conversation, state).to_dict(), indent=2))
    return 0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidInput(f"Could not read the story sheet {path}: {e}") from e
    if not isinstance(data, dict):
        raise InvalidInput(f"The story sheet {path} is not a JSON object.")
    return data


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from illustrator.evaluation import DEFAULT_EVAL_SET, evaluate, load_eval_set, render_failures, render_table
    from illustrator.models import load_refiner_for, sheet_refiner

    cases = load_eval_set(args.set or DEFAULT_EVAL_SET)
    notices: list[str] = []
    refiner = load_refiner_for(settings, notices)
    if not args.flat:
        refiner = sheet_refiner(refiner)
    for notice in notices:
        logger.warning(notice)
    report = evaluate(refiner, cases)
    print(render_table([report]))
    asked, turns = report.llm_asked
    print(f"\nThe LLM was asked on {asked} of {turns} turns ({turns - asked} read by the rules alone).")
    print(f"\nFailed cases ({len(cases) - report.overall[0]} of {len(cases)}):\n{render_failures(report)}")
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from illustrator.credits import artists_in, credit_line
    from illustrator.generator import GenerationParams
    from illustrator.models import load_generator
    from storage.pngmeta import make_pnginfo, with_artists

    notices: list[str] = []
    generator = load_generator(settings, notices)
    for notice in notices:
        logger.warning(notice)
    defaults = generator.defaults
    params = GenerationParams(
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        steps=args.steps or defaults.steps,
        guidance_scale=defaults.guidance_scale,
        width=args.width or defaults.width,
        height=args.height or defaults.height,
    )
    picture = generator.text_to_image(params)
    artists = artists_in(args.prompt)
    ours = {"params": asdict(picture.params), "artists": artists, "credit": credit_line(artists)}
    picture.image.save(args.output, pnginfo=make_pnginfo(with_artists(picture.parameters_text(), artists), ours))
    placeholder = " (placeholder model: random noise, not a real picture)" if generator.is_placeholder else ""
    print(f"Wrote {args.output} in {picture.seconds:.2f} s{placeholder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
