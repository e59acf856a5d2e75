"""The Hugging Face hub as a model source: answer quickly when a model is neither cached nor reachable."""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 3.0


class HubUnreachable(OSError):
    """A hub model is not in the local cache and the hub cannot be reached."""


def ensure_available(repo_id: str, config_file: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Return if `repo_id` is cached or the hub answers; raise HubUnreachable at once otherwise.

    Without this, huggingface_hub retries an unreachable hub for about half a minute per model before giving up,
    which is what a writer with no network would wait through before the app falls back to the offline preset.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, config_file), str):
        return  # cached: the libraries load it without the network
    if constants.HF_HUB_OFFLINE:
        raise HubUnreachable(f"{repo_id} is not in the local cache and the hub is offline (HF_HUB_OFFLINE)")
    endpoint = urlparse(constants.ENDPOINT)
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as e:
        logger.info("The hub at %s cannot be reached: %s", host, e)
        raise HubUnreachable(f"{repo_id} is not in the local cache and the hub ({host}) cannot be reached") from e
