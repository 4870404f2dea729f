"""Errors raised while reading database files (defined in ``ioc.dbd``, the bottom layer)."""
from ..dbd.errors import DbLoadError

__all__ = ["DbLoadError"]
