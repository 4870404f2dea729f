"""The put log: a line for every put a client makes, as EPICS's caPutLog module writes them.

* :mod:`ioc.putlog.core` -- :class:`PutLog` (``db.putlog``): the hooks the CA server calls
  around a put (``before``/``after``/``refused``), selection, burst merging, the worker thread.
* :mod:`ioc.putlog.format` -- what is read from a field and the text of a line.
* :mod:`ioc.putlog.outputs` -- a file, TCP log servers (caPutLogInit).
* :mod:`ioc.putlog.devsup` -- DTYP "PutLog": stringin/lsi with the latest line, waveform with
  the last lines (db/putlog.template).
* :mod:`ioc.putlog.shell` -- caPutLogInit, caPutLogReconf, caPutLogShow, caPutLogSetTimeFmt,
  caPutLogSetBurstTimeout, caPutLogFile.
"""
from .core import PutLog

__all__ = ["PutLog"]
