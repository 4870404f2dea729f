# Every kind of missing file names the file and the line that asked for it
dbLoadRecords("nonexist.db")
dbLoadTemplate("nonexist.substitutions")
< nonexist_include.cmd
iocshLoad("nonexist_load.cmd", "A=1")
dbLoadRecords("has_missing_include.db")
dbLoadTemplate("has_missing_template.substitutions")
dbLoadRecords("rec.db", "P=MISS:,R=X,VAL=1")
iocInit
