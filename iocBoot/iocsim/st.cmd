#!../../bin/psu-timing-ioc
#- Embedded default: runs on simulated hardware only. Started by `psu-timing-ioc` with no arguments.
#- TOP is set by psu-timing-ioc to the top of this source tree unless the environment has it.
cd "$(TOP)"

epicsEnvSet("IOC", "IOCSIM:")

# Demo database (the PSU and timing subsystems join this st.cmd as they land)
dbLoadRecords("db/demo.db", "P=$(IOC)")

iocInit
