"""Autosave (synApps autosave) for this IOC: the file formats first.

:mod:`ioc.autosave.reqfile` reads request files (``.req``) as ``readReqFile`` does,
:mod:`ioc.autosave.savfile` writes and reads save files (``.sav``) as ``write_it`` and
``reboot_restore`` do, and :mod:`ioc.autosave.files` saves atomically with the ``.savB``
backup and sequence files and chooses the file to restore from as ``fopen_and_check``
does.  Nothing here touches records, CA or the shell; the save task and the shell
commands build on these modules.
"""
