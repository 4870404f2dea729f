# An unknown command and a failing one: base reports them and goes on
epicsEnvSet("P", "GO:")
dbLoadRecords("rec.db", "P=$(P),R=FIRST,VAL=1")
noSuchCommand("x")
asynSetTraceMask("L0", -1, 0x9)
dbLoadRecords("rec.db", "P=$(P),R=AFTER,VAL=2")
iocInit
