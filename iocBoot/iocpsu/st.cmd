#!../../bin/psu-timing-ioc
#- Real hardware: one E3631A on an RS-232 port (9600 8N2, the factory setting; a null-modem
#- cable). Run: psu-timing-ioc iocBoot/iocpsu/st.cmd
#- PSU_DEVICE: a serial device (/dev/ttyUSB0), "auto" (probe the serial ports for an E3631A),
#- "auto:/dev/ttyUSB0,/dev/ttyUSB1" (probe these), or a pyserial URL (socket://host:port).
cd "$(TOP)"

epicsEnvSet("IOC", "$(IOC=PSUIOC:)")
epicsEnvSet("PSU_DEVICE", "$(PSU_DEVICE=/dev/ttyUSB0)")

E3631AConfigure("psu1", "$(PSU_DEVICE)", "baud=9600 stop=2 timeout_ms=500")
dbLoadRecords("db/e3631a.db", "P=$(P=PSU1:),PORT=psu1")

iocInit
