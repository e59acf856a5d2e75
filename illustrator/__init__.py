"""Illustrator: illustrate a story by chatting."""

__version__ = "0.1.0"
