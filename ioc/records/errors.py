"""Errors of record support, at the bottom of the record layer (links and records raise them)."""
from __future__ import annotations


class PutError(Exception):
    """A put EPICS would refuse. ``str()`` is the message the CA client receives."""


class PutErrorKept(PutError):
    """A put that fails after its value was stored, and keeps it (base's dbPut when the
    record's special() refuses afterwards, e.g. a calc given a bad CALC)."""


class RecordInitError(Exception):
    """A record that cannot be initialised; iocInit reports it with the record's file:line."""


class RecordInitReport(RecordInitError):
    """An init_record failure base reports and carries on from (recGblRecordError): iocInit
    prints it with the record's file:line, the IOC starts, and the record stays as far as its
    initialisation got (a sub whose SNAM is unknown raises BAD_SUB/INVALID when processed)."""
