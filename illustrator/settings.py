"""Settings, read once at start-up (by the CLI) and passed down; nothing below the CLI reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_IMAGE_MODEL = "stabilityai/sd-turbo"
DEFAULT_REFINER_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
OFFLINE_MODEL = "offline"  # the built-in preset of tiny placeholder models
AUTO = "auto"
NO_FAST_DECODER = "none"
DECODERS = ("auto", "fast", "full")
# int8: int8 weights and dynamically quantised int8 activations; int8-weights: int8 weights, computed in the dtype
QUANTIZATIONS = ("none", "int8", "int8-weights")


@dataclass(frozen=True)
class Settings:
    """Everything that can be configured, with sensible defaults."""

    data_dir: Path = field(default_factory=lambda: Path.home() / ".illustrator")
    database_url: str | None = None  # defaults to SQLite in the data folder
    image_model: str = DEFAULT_IMAGE_MODEL  # hub id, local diffusers folder, .safetensors file or "offline"
    refiner_model: str = DEFAULT_REFINER_MODEL  # hub id, local folder, .gguf file, "offline" or "none"
    clip_model: str | None = None  # an image-text model (CLIP: hub id or folder) that checks pictures; None: off
    clip_threshold: float = 0.2  # a locked or established look scoring under this "looks lost" in the picture
    offline: bool = False  # use the offline preset for both models, without trying the configured ones
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    dtype: str = "auto"  # auto, float32, float16, bfloat16
    # TAESD (AutoencoderTiny) for live previews: hub id, local folder, "auto" (the one for the model's family) or "none"
    fast_decoder: str = AUTO
    # what decodes the final picture: "fast" (TAESD), "full" (the model's own VAE), "auto" (fast on the CPU, else full)
    decoder: str = AUTO
    quantize: str = "none"  # int8 for the UNet's linear layers: "none", "int8" or "int8-weights" (needs torchao)
    steps: int | None = None  # overrides the model family's default number of steps
    width: int | None = None  # overrides the model's native picture size
    height: int | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    max_message_chars: int = 2000
    max_upload_bytes: int = 20 * 1024 * 1024  # a starting picture's file
    max_upload_pixels: int = 25_000_000  # a starting picture's width x height
    queue_size: int = 32  # turns waiting to be drawn; one more is told at once that the app is busy
    logins: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, password) pairs for the login
    no_login: bool = False  # serve on the network without a login, because the writer asked to
    backend: str = "local"  # where pictures are drawn: "local" (this process) or "ray" (a Ray Serve deployment)
    ray_address: str = "auto"  # the Ray cluster for the ray backend: "auto", "local" or "ray://HOST:PORT"
    ray_replicas: int = 1  # image model replicas (each loads the model once)
    ray_gpus_per_replica: float = 0.0  # 0 draws on the workers' CPUs
    # turns the queue runs at once on the ray backend; None: one per replica (the local backend always runs one)
    turns_at_once: int | None = None

    @property
    def turn_concurrency(self) -> int:
        """How many turns run at once: one with the local backend; on Ray the setting, else one per replica."""
        if self.backend != "ray":
            return 1  # one model in this process draws one picture at a time
        return self.turns_at_once if self.turns_at_once is not None else self.ray_replicas

    @property
    def pictures_dir(self) -> Path:
        """Where picture files live."""
        return self.data_dir / "pictures"

    @property
    def thumbnails_dir(self) -> Path:
        """Where the small copies of the pictures shown in lists and the gallery are cached."""
        return self.data_dir / "thumbnails"

    @property
    def exports_dir(self) -> Path:
        """Where session exports (zips) are written before they are downloaded."""
        return self.data_dir / "exports"

    @property
    def models_dir(self) -> Path:
        """Where locally built models (the offline preset) are cached."""
        return self.data_dir / "models"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, SQLite in the data folder unless set."""
        return self.database_url or f"sqlite:///{self.data_dir / 'illustrator.db'}"
