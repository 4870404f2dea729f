# on error break: the first error ends the script (before iocInit: nothing is served)
on error break
dbLoadRecords("rec.db", "P=BRK:,R=X,VAL=1")
noSuchCommand
dbLoadRecords("rec.db", "P=BRK:,R=Y,VAL=2")
iocInit
