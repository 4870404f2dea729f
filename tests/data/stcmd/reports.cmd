# Database reports, before and after iocInit (compared with softIoc's output)
dbLoadRecords("reports.db")
dbl
dbl ai "VAL SCAN NOPE recordType"
dbl nosuchtype
dbgrep "R:A*"
dbla
dbnr
dbnr 1
dbli auto*
dbl ao OUT
scanppl
dbCreateAlias pdbbase R:B R:B:al
dbla "*B*"
dbhcr
iocInit
dbl ao OUT
scanpel
scanppl 1
scanppl 5
dbhcr
dbgf R:A2
dbpf R:B 1
