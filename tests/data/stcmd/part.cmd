# part.cmd: loaded by idioms.cmd with R and VAL
echo "in part.cmd: R=$(R) VAL=$(VAL)"
dbLoadRecords("rec.db", "P=$(P),R=$(R),VAL=$(VAL)")
