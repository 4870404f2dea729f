#!../../bin/psu-timing-ioc
#- Event slave: time from the event master (iocBoot/ioctime-master/st.cmd) through the soft event
#- link and the master's sync messages. Several slaves may run on one host:
#-   IOC=TIMES1: psu-timing-ioc iocBoot/ioctime-slave/st.cmd
#-   IOC=TIMES2: psu-timing-ioc iocBoot/ioctime-slave/st.cmd
#- Environment (defaults in brackets): IOC [TIMES1:], EVT_LINK [239.255.18.1:18324],
#- EVT_MASTER_PORT [18323], EVT_SLAVE_PORT [18322], EVT_MASTER_ADDR [broadcast on every
#- interface], EVT_AUTH_KEY [none].
cd "$(TOP)"

epicsEnvSet("IOC", "$(IOC=TIMES1:)")

# Soft event system (a receiver only: the generator runs on the master), EventTime as a slave
EvtSoftHwConfigure("$(EVT_LINK=239.255.18.1:18324)", 0)
EvtTimeConfigure(0, 1, 1000000, $(EVT_MASTER_PORT=18323), $(EVT_SLAVE_PORT=18322), 250)

dbLoadRecords("db/generalTime.db", "IOC=$(IOC)")
dbLoadRecords("db/evtTime.db", "IOC=$(IOC)")

iocInit
