#!../../bin/psu-timing-ioc
#- Event master: the soft event generator's owner, its PLL steered onto NTP (or the OS clock).
#- Run: psu-timing-ioc iocBoot/ioctime-master/st.cmd   (then slaves: iocBoot/ioctime-slave/st.cmd)
#- Environment (defaults in brackets): EPICS_TS_NTP_INET [127.0.0.1, this host's NTP server],
#- EVT_LINK [239.255.18.1:18324], EVT_PPM [37: the soft EVG's oscillator error, ppm],
#- EVT_MASTER_PORT [18323], EVT_SLAVE_PORT [18322], EVT_SYNC_ADDR_LIST [broadcast on every
#- interface], EVT_AUTH_KEY [none], EVT_PLL_INTERVAL_S [2].
cd "$(TOP)"

epicsEnvSet("IOC", "TIMEM:")

# The PLL's reference: NTP at priority 100 (generalTime without EventTime's 70)
epicsEnvSet("EPICS_TS_NTP_INET", "$(EPICS_TS_NTP_INET=127.0.0.1)")
NTPTime_Init(100)

# Soft event system, and EventTime as the event master (sync rate 1 s, 1 MHz ticks)
EvtSoftHwConfigure("$(EVT_LINK=239.255.18.1:18324)", $(EVT_PPM=37))
EvtTimeConfigure(1, 1, 1000000, $(EVT_MASTER_PORT=18323), $(EVT_SLAVE_PORT=18322), 250)

dbLoadRecords("db/generalTime.db", "IOC=$(IOC)")
dbLoadRecords("db/ntp.db", "IOC=$(IOC)")
dbLoadRecords("db/evtTime.db", "IOC=$(IOC)")

iocInit
