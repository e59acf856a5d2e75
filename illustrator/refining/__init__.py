"""The story sheet: a model of the characters and the scene that each chat turn changes (see docs/REFINER.md)."""
