"""Device support: the DTYP registry and the built-in Soft Channel supports."""
from .registry import DeviceSupport, DevSupError, choices, lookup, register  # noqa: F401
from . import soft  # noqa: F401,E402  (registers "Soft Channel" first, as EPICS's dbd does)
from . import ioc_exit  # noqa: F401,E402
from . import soft_array, soft_control, soft_scalar, soft_sub  # noqa: F401,E402
from . import soft_misc  # noqa: F401,E402  (getenv, stdio, Db State, Async inputs; DTYP order)
from . import ctl_token  # noqa: F401,E402  (DTYP "Control Token")
