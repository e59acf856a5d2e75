"""Drawing pictures behind one interface: in this process (local) or on GPU workers (Ray Serve)."""

from illustrator.drawing.base import DrawingBackend, KeptLatents, picture_key

__all__ = ["DrawingBackend", "KeptLatents", "picture_key"]
