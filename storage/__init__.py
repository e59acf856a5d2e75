"""Persistence for Illustrator: SQLAlchemy tables, repositories and picture files on disk."""
