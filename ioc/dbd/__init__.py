"""Database definitions (``.dbd``): the reader and the load error every file reader raises.

The bottom layer of the IOC core: record support (``ioc.records``) describes its record types with
what this package reads, device support and the database loader (``ioc.database``) sit above.
"""
from .errors import DbLoadError
from .reader import Dbd, FieldSpec, RecordTypeSpec, read_dbd

__all__ = ["DbLoadError", "Dbd", "FieldSpec", "RecordTypeSpec", "read_dbd"]
