"""EventTime: hardware-synchronised time stamps for generalTime, at priority 70.

The design of the seed (Kalantari, PSI, 2007: ``EvtTimeConfigure``, master/slave over UDP ports
18323/18322, PLL, clock watch, fault mbbi, validating ao) on drvTS's public wire format and
algorithms (Kowalkowski, EPICS 3.13). Where each part lives, with its design in the docstring:

* :mod:`~timing.evt.hw` -- the receiver/transmitter protocols (``devTSrxHW``/``devTStxHW``).
* :mod:`~timing.evt.soft` -- the soft event system: soft EVG and EVRs on a loopback multicast
  link (``EvtSoftHwConfigure``), with fault injection.
* :mod:`~timing.evt.wire` -- the drvTS 52-byte message, our trailer (sequence, HMAC-SHA256).
* :mod:`~timing.evt.driver` -- configuration, event time, validity, faults, validation, the
  generalTime provider functions (current and event time).
* :mod:`~timing.evt.master` -- first sync, sync server, stamp server, PLL thread.
* :mod:`~timing.evt.pll` -- the PLL's loop filter and lock detector.
* :mod:`~timing.evt.slave` -- clock set from the master, sync client, sync timeout.
* :mod:`~timing.evt.watch` -- the clock watch (tick fail).
* :mod:`~timing.evt.devsup` -- DTYPs "EventTime" and "Soft EVG" (``db/evtTime.db``).
* :mod:`~timing.evt.shell` -- ``EvtSoftHwConfigure``, ``EvtTimeConfigure``, ``EvtTimeReport``.

Like :mod:`timing.registry`, the core (hw, soft, wire, driver, master, slave, pll, watch) imports
nothing from ``ioc`` or caproto; ``devsup`` and ``shell`` bridge to the IOC.
"""
