# Python subroutines for sub_demo.db: subr_demo must be importable (PYTHONPATH).
registerSubroutine add subr_demo:add
registerSubroutine fail subr_demo:fail
registerSubroutine boom subr_demo:boom
registerSubroutine initMark subr_demo:init_mark
registerSubroutine slow subr_demo:slow
# asubScale registers itself through @subroutine when the module is imported.
dbLoadRecords("$(DB)", "P=$(P)")
iocInit
