"""The iocsh-style shell: interpreter, command registry, core commands."""
