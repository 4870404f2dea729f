#- EPICS base st.cmd idioms. Run by psu-timing-ioc and by EPICS base's softIoc from this
#- directory (tests/integration/test_shell_stcmd.py compares their echo, errors and records).
# the environment, with $(NAME=default)
epicsEnvSet("P", "$(STC_P=STC:)")
epicsEnvSet("SUFFIX", "$(STC_UNSET_SUFFIX=one)")
echo "prefix $(P), suffix $(SUFFIX)"
   dbLoadRecords("rec.db", "P=$(P),R=A,VAL=$(STC_VAL=1.5)")
# iocshLoad: its macros are set while the file runs and forgotten after
iocshLoad("part.cmd", "R=B,VAL=2.5")
echo "after iocshLoad: R=$(R=unset)"
# < include: runs with the macros of the script that includes it
< part2.cmd
dbLoadRecords("bo.db", "P=$(P),NAME=$(SUFFIX)")
# iocsh variables
var boHIGHprecision 3
var boHIGHprecision
var calcoutODLYlimit 50.5
var calcoutODLYlimit
# errors are reported and the script goes on
noSuchCommand(1, "$(P)")
dbLoadRecords("nonexist.db")
iocshLoad("nonexist.cmd")
var noSuchVariable
echo "$(STC_UNDEFINED_MACRO)"
on error continue
dbLoadRecords("rec.db", "P=$(P),R=LAST,VAL=7")
iocInit
