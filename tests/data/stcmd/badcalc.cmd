dbLoadRecords("badcalc.db")
iocInit
