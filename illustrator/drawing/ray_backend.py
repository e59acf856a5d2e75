"""The Ray Serve backend: the image model runs in replicas on a Ray cluster (one GPU each where there are GPUs).

Each replica loads the model once. A draw is one streaming request: progress and previews stream back while it runs,
then the picture with its final latents. The latents of the pictures drawn stay in the web process (`KeptLatents`) and
travel with an edit's request: any replica can then edit any picture without a VAE encode, and a replica that dies or
is replaced loses nothing (docs/DEPLOY.md has the measurements behind this choice).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from illustrator.drawing.base import DrawingBackend, KeptLatents, Preview, Progress
from illustrator.errors import GenerationCancelled, GenerationFailed, IllustratorError, InvalidInput, ModelUnavailable
from illustrator.settings import OFFLINE_MODEL, Settings

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from illustrator.generator import GeneratedPicture, GenerationParams
    from illustrator.loading import ModelDefaults

logger = logging.getLogger(__name__)

APP_NAME = "illustrator-drawing"
WORKER_STOPPED = "The picture could not be drawn: the drawing worker stopped. Please send your message again."
WORKER_FAILED = "The picture could not be drawn because the drawing worker failed."
_ERRORS: dict[str, type[IllustratorError]] = {
    cls.__name__: cls for cls in (GenerationCancelled, GenerationFailed, InvalidInput, ModelUnavailable)
}


@dataclass(frozen=True)
class DrawRequest:
    """One draw, as it travels to a replica: the parameters and, for an edit, the picture or its latents."""

    params: GenerationParams
    image: Image.Image | None = None  # an edit's starting picture, when its latents are not kept
    latents: torch.Tensor | None = None  # an edit's starting latents (a picture drawn by this model)
    previews: bool = False


class ImageModelReplica:
    """A Ray Serve replica: the image model loaded once, drawing one picture at a time, streaming its progress."""

    def __init__(self, settings: Settings) -> None:
        from illustrator.models import load_generator

        notices: list[str] = []
        self.generator = load_generator(settings, notices)
        self.notices = tuple(notices)
        logger.info("Replica ready with %s", self.generator.model_name)

    def describe(self) -> dict[str, Any]:
        """The model this replica draws with: its name, whether it is a placeholder, its defaults, notices."""
        generator = self.generator
        return {
            "model_name": generator.model_name,
            "is_placeholder": generator.is_placeholder,
            "defaults": generator.defaults,
            "latent_shape_64": generator.latent_shape(64, 64),  # the latents' channels and scale, for any size
            "notices": self.notices,
            "replica": _replica_id(),
        }

    async def draw(self, request: DrawRequest) -> AsyncIterator[tuple[Any, ...]]:
        """Draw, yielding ("replica", id), ("progress", done, total), ("preview", image)... then ("done", ...)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        cancel = threading.Event()

        def send(*event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        yield ("replica", _replica_id())
        work = loop.run_in_executor(None, self._draw, request, send, cancel)
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                    continue
                getter.cancel()
                while not events.empty():
                    yield events.get_nowait()
                yield work.result()
                return
        finally:
            cancel.set()  # the caller stopped listening (Stop, or it went away): stop drawing at the next step

    def _draw(self, request: DrawRequest, send: Any, cancel: threading.Event) -> tuple[Any, ...]:
        from illustrator.drawing.local import memory_errors

        progress = lambda done, total: send("progress", done, total)  # noqa: E731
        preview = (lambda image: send("preview", image)) if request.previews else None
        try:
            with memory_errors():
                if request.image is None and request.latents is None:
                    drawn = self.generator.text_to_image(
                        request.params, progress=progress, preview=preview, cancel=cancel
                    )
                else:
                    start = request.latents if request.latents is not None else request.image
                    assert start is not None
                    drawn = self.generator.image_to_image(
                        start, request.params, progress=progress, preview=preview, cancel=cancel
                    )
        except IllustratorError as e:
            return ("error", type(e).__name__, str(e))
        return ("done", drawn.image, drawn.params, drawn.model_name, drawn.seconds, drawn.latents)


def _replica_id() -> str:
    from ray import serve

    return str(serve.get_replica_context().replica_id.unique_id)


class RayBackend(DrawingBackend):
    """Draws on a Ray Serve deployment of `ImageModelReplica`s, through a deployment handle."""

    def __init__(self, handle: Any, description: dict[str, Any]) -> None:
        self._handle = handle
        self.model_name = str(description["model_name"])
        self.is_placeholder = bool(description["is_placeholder"])
        self._defaults: ModelDefaults = description["defaults"]
        self.notices: tuple[str, ...] = tuple(description.get("notices", ()))
        _, self._latent_channels, scaled, _ = description["latent_shape_64"]
        self._latent_scale = 64 // int(scaled)
        self.kept = KeptLatents()
        # the replica of the draw that started last (tests and logs); concurrent turns each follow their own
        self.last_replica: str | None = None

    @property
    def defaults(self) -> ModelDefaults:
        """The model's defaults, as the replicas loaded it."""
        return self._defaults

    def text_to_image(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Draw a new picture on a replica."""
        request = DrawRequest(params.validated(), previews=preview is not None)
        return self._draw(request, progress, preview, cancel)

    def image_to_image(
        self,
        image: Image.Image,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Redraw `image` on a replica; its latents travel with the request when this backend drew it."""
        params = params.validated(image_to_image=True)
        shape = self._latent_shape(params.width, params.height)
        latents = self.kept.find(image, model_name=self.model_name, shape=shape)
        request = DrawRequest(
            params, image=image if latents is None else None, latents=latents, previews=preview is not None
        )
        return self._draw(request, progress, preview, cancel)

    def _latent_shape(self, width: int, height: int) -> tuple[int, ...]:
        return (1, int(self._latent_channels), height // self._latent_scale, width // self._latent_scale)

    def _draw(
        self,
        request: DrawRequest,
        progress: Progress | None,
        preview: Preview | None,
        cancel: threading.Event | None,
    ) -> GeneratedPicture:
        from ray.exceptions import RayError
        from ray.serve.exceptions import RequestCancelledError

        # 1. a cancel that came before the start costs nothing
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("The picture was cancelled.")

        # 2. start the streaming request; Stop cancels it on the replica
        response = self._handle.options(stream=True).draw.remote(request)
        finished = threading.Event()
        if cancel is not None:
            threading.Thread(target=_cancel_on, args=(cancel, finished, response), daemon=True).start()

        # 3. relay progress and previews until the picture (or an error) comes
        replica: list[str] = []  # this draw's own replica: other turns may be drawing at the same time
        try:
            outcome = self._follow(response, progress, preview, replica)
        except RequestCancelledError as e:
            raise GenerationCancelled("The picture was cancelled.") from e
        except RayError as e:
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("The picture was cancelled.") from e
            logger.error("The drawing replica %s failed: %s", replica[0] if replica else "(unknown)", e)
            raise GenerationFailed(WORKER_STOPPED) from e
        finally:
            finished.set()
        return self._picture(outcome)

    def _follow(
        self,
        response: Iterator[tuple[Any, ...]],
        progress: Progress | None,
        preview: Preview | None,
        replica: list[str],
    ) -> Any:
        for event in response:
            kind = event[0]
            if kind == "replica":
                replica.append(event[1])
                self.last_replica = event[1]
            elif kind == "progress" and progress is not None:
                progress(event[1], event[2])
            elif kind == "preview" and preview is not None:
                preview(event[1])
            elif kind in ("done", "error"):
                return event
        raise GenerationFailed(WORKER_FAILED)

    def _picture(self, outcome: tuple[Any, ...]) -> GeneratedPicture:
        from illustrator.generator import GeneratedPicture

        if outcome[0] == "error":
            raise _ERRORS.get(outcome[1], GenerationFailed)(outcome[2])
        _, image, params, model_name, seconds, latents = outcome
        drawn = GeneratedPicture(image=image, params=params, model_name=model_name, seconds=seconds, latents=latents)
        self.kept.keep(drawn)
        return drawn


def _cancel_on(cancel: threading.Event, finished: threading.Event, response: Any) -> None:
    """Cancel the remote draw when the writer presses Stop; end quietly when the draw finishes first."""
    while not finished.is_set():
        if cancel.wait(0.05):
            response.cancel()
            return


def connect_ray_backend(settings: Settings, notices: list[str]) -> RayBackend:
    """Connect to the Ray cluster, deploy the image model (once per replica) and return a backend that draws on it."""
    import ray
    from ray import serve

    if settings.offline or settings.image_model == OFFLINE_MODEL:
        # replicas on this machine share the models folder: build the preset once here, not in each at the same time
        from illustrator.offline_image import build_offline_image_model

        build_offline_image_model(settings.models_dir / "offline-image")
    try:
        if not ray.is_initialized():
            address = None if settings.ray_address == "local" else settings.ray_address
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        serve.start(http_options={"location": "NoServer"})
        handle = serve.run(deployment_for(settings), name=APP_NAME, route_prefix=None)
        description = handle.describe.remote().result()
    except (ConnectionError, RuntimeError, ValueError) as e:
        logger.exception("Could not start the drawing deployment on Ray at %s", settings.ray_address)
        raise ModelUnavailable(f"The Ray cluster at {settings.ray_address} cannot draw pictures: {e}") from e
    notices.extend(description.get("notices", ()))
    logger.info("Drawing on Ray Serve: %d replica(s) of %s", settings.ray_replicas, description["model_name"])
    return RayBackend(handle, description)


def deployment_for(settings: Settings) -> Any:
    """The Serve application: `settings.ray_replicas` replicas, each with `settings.ray_gpus_per_replica` GPUs."""
    from ray import serve

    gpus = settings.ray_gpus_per_replica
    deployment: Any = serve.deployment(ImageModelReplica)
    deployment = deployment.options(
        name="ImageModel",
        num_replicas=settings.ray_replicas,
        max_ongoing_requests=1,  # one picture at a time per replica: the router sends the next to an idle one
        ray_actor_options={"num_gpus": gpus, "num_cpus": 0 if gpus else 1},
        health_check_period_s=2,
    )
    # The replicas never need the writers' passwords; on the CPU they draw on the device the settings say.
    return deployment.bind(replace(settings, logins=(), device="cpu" if not gpus else settings.device))
