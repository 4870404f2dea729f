"""The IOC's Channel Access server (EPICS base rsrv's behaviour, on asyncio).

``server`` (CaServer: TCP/UDP/beacons), ``circuit`` (one client's requests and event queue),
``channel`` (field, client channel, subscription), ``dbr`` (DBR payloads), ``filters``
(EPICS 7 channel filters), ``fieldlog`` (db_field_log), ``protocol`` (numbers and headers).
"""
