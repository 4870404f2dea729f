"""Access security (EPICS base asLib): ACF parsing, the rule engine and its dumps.

See :mod:`ioc.access.acf` (parser), :mod:`ioc.access.engine` (rights),
:mod:`ioc.access.dump` (asdbdump/asprules/aspuag/asphag text) and
:mod:`ioc.access.check` (the ``ascheck`` tool).
"""

from .acf import (ACCESS_NAMES, DEFAULT, NONE, READ, WRITE, AccessConfig, AcfResult,
                  load_acf_file, parse_acf)
from .engine import Access, compute_access

__all__ = ["ACCESS_NAMES", "DEFAULT", "NONE", "READ", "WRITE", "Access", "AccessConfig",
           "AcfResult", "compute_access", "load_acf_file", "parse_acf"]
