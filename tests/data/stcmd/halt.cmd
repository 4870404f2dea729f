# on error halt: the first error stops every command after it; the IOC keeps serving
dbLoadRecords("rec.db", "P=HALT:,R=X,VAL=1")
iocInit
on error halt
noSuchCommand
dbpf("HALT:X", "5")
