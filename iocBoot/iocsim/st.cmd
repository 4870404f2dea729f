#!../../bin/psu-timing-ioc
#- Embedded default: runs on simulated hardware only. Started by `psu-timing-ioc` with no arguments.
#- TOP is set by psu-timing-ioc to the top of this source tree unless the environment has it.
cd "$(TOP)"

epicsEnvSet("IOC", "IOCSIM:")

# One simulated E3631A, in process (e3631a-sim serves the same model on a pty or TCP port)
E3631AConfigure("psu1", "sim://", "profile=realistic")
dbLoadRecords("db/e3631a.db", "P=PSU1:,PORT=psu1")

# Demo records (a soft ai/ao/calc set to try caget/caput/camonitor on)
dbLoadRecords("db/demo.db", "P=$(IOC)")

# generalTime: providers and the GTIM_* records (OS clock at 999 is always there)
dbLoadRecords("db/generalTime.db", "IOC=$(IOC)")
#- NTP as a time provider (EPICS priority 100), with a server in EPICS_TS_NTP_INET (host[:port]):
#-   NTPTime_Init(100)
#-   dbLoadRecords("db/ntp.db", "IOC=$(IOC)")

iocInit
