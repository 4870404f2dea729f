echo "in part2.cmd: VAL=$(VAL=3.5)"
dbLoadRecords("rec.db", "P=$(P),R=C,VAL=$(VAL=3.5)")
