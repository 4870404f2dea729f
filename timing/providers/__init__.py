"""Time providers for the generalTime registry (``timing.registry``): the OS clock, NTP, and a
steerable clock that exists for tests only (``fake_clock``)."""
