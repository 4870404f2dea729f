#!../../bin/psu-timing-ioc
#- Embedded default: runs on simulated hardware only. Started by `psu-timing-ioc` with no arguments.
#- TOP is set by psu-timing-ioc to the top of this source tree unless the environment has it.
cd "$(TOP)"

epicsEnvSet("IOC", "IOCSIM:")

# One simulated E3631A, in process (e3631a-sim serves the same model on a pty or TCP port)
E3631AConfigure("psu1", "sim://", "profile=realistic")
dbLoadRecords("db/e3631a.db", "P=PSU1:,PORT=psu1")
# Its control token: while one client holds it, only that client may set PSU1:* (GRACE: s the
# holder may be disconnected and keep it). CTL:FORCE frees it (managers, see psu.acf).
dbLoadRecords("db/ctlToken.template", "P=PSU1:,GRACE=30")

# Demo records (a soft ai/ao/calc set to try caget/caput/camonitor on)
dbLoadRecords("db/demo.db", "P=$(IOC)")

# generalTime: providers and the GTIM_* records (OS clock at 999 is always there)
dbLoadRecords("db/generalTime.db", "IOC=$(IOC)")
#- NTP as a time provider (EPICS priority 100), with a server in EPICS_TS_NTP_INET (host[:port]):
#-   NTPTime_Init(100)
#-   dbLoadRecords("db/ntp.db", "IOC=$(IOC)")

# Event time: the soft event system (EVG + EVR on a multicast link on this host) and EventTime
# as the event master (generalTime priority 70: GTIM_CUR_SRC shows EventTime once valid).
#- Its sync messages stay on this host unless EVT_SYNC_ADDR_LIST says otherwise.
epicsEnvSet("EVT_SYNC_ADDR_LIST", "$(EVT_SYNC_ADDR_LIST=127.255.255.255)")
EvtSoftHwConfigure("239.255.18.1:18324", 37)
EvtTimeConfigure(1, 1, 1000000, 18323, 18322, 250)
dbLoadRecords("db/evtTime.db", "IOC=$(IOC)")

# Access security: this host may set, others read; managers may force a token (psu.acf).
# HOSTNAME is this host's name (psu-timing-ioc sets it when the environment has none).
asSetSubstitutions("HOST=$(HOSTNAME),MANAGERS='$(PSU_MANAGERS=$(USER=root))'")
asSetFilename("$(TOP)/iocBoot/iocsim/psu.acf")
#- Edit psu.acf, then "caput IOCSIM:READACF 1" (or asInit here) to put it in force.
dbLoadRecords("db/access.db", "IOC=$(IOC)")

# Put log (caPutLog): every put a TRAPWRITE rule traps, and every refused one, as a line in
# $(IOC)PUTLOG (the latest) and $(IOC)PUTLOG_HIST (the last 20), and in the IOC's log.
#- To a file too:       caPutLogFile("/var/log/psu/put.log")
#- To a log server too: caPutLogInit("loghost:7011", 0)
dbLoadRecords("db/putlog.template", "IOC=$(IOC)")

iocInit
