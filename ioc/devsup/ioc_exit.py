"""Device support "IOC exit" for the softIoc-style exit PV (``-x PREFIX`` -> ``PREFIX:exit``).

Writing (processing) the record asks the IOC to shut down cleanly, as softIoc's exit record does.
"""
from __future__ import annotations

import os
import signal

from .registry import DeviceSupport, register


class ExitDevice(DeviceSupport):
    def write(self) -> None:
        # The main thread owns shutdown; SIGTERM reaches its handler whatever it is doing.
        os.kill(os.getpid(), signal.SIGTERM)


register("bo", "IOC exit", ExitDevice)
