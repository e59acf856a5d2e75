"""The one small error hierarchy of Illustrator; every message is a plain sentence meant for the writer."""


class IllustratorError(Exception):
    """Base class: the message is safe and useful to show to the writer."""


class InvalidInput(IllustratorError):
    """The writer (or an API caller) sent something we cannot use."""


class NotFound(IllustratorError):
    """A session, message or picture that does not exist (or is not visible to the caller)."""


class ModelUnavailable(IllustratorError):
    """A model could not be loaded (no network, wrong path, broken file, not enough memory)."""


class GenerationFailed(IllustratorError):
    """The diffusion pipeline failed while drawing a picture."""


class GenerationCancelled(IllustratorError):
    """The writer cancelled a picture while it was being drawn."""


class PlanError(IllustratorError):
    """The refiner's output could not be turned into a valid plan (the fallback refiner takes over)."""


class StorageError(IllustratorError):
    """Saving or reading sessions and pictures failed."""
