"""Staging directories and files that only their user can reach.

The staging root (default ``$TMPDIR/daskflow-staging-$UID``) is a well-known
name in a directory every user may write to. Another user of a shared login
node who creates it first could plant "cached" inputs (a cache hit needs only
the right path and size) or read what was fetched. So the root (and a cache
directory set apart from it) is used only if it is ours and nobody else may
write in it (``UnsafeStagingDir`` otherwise); a root of ours that others may
read is tightened to 0700. Everything under it is created 0700 (directories)
or 0600 (files) whatever the umask, without touching the process's umask.
"""

from __future__ import annotations

import os
import stat

from ..errors import UnsafeStagingDir
from ..private import DIR_MODE, FILE_MODE, create_file, make_dir, makedirs, touch_file

__all__ = ["DIR_MODE", "FILE_MODE", "create_file", "makedirs", "private_root", "touch_file"]

_checked: set[tuple[str, int]] = set()  # (path, inode) of roots checked in this process


def _owner(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def private_root(path: str) -> str:
    """Make or check the trust root ``path`` of staged files; returns it.

    Missing: created 0700 (its parents as the umask says). Present: refused
    with ``UnsafeStagingDir`` if it is a symbolic link of another user, not a
    directory, not owned by this user, or writable by group or others;
    readable or searchable by them: tightened to 0700. Checked once per
    process (and again if the directory was replaced).
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    make_dir(path)
    link = os.lstat(path)
    uid = os.getuid()
    if stat.S_ISLNK(link.st_mode) and link.st_uid != uid:
        raise UnsafeStagingDir(path, _owner(link.st_uid), stat.S_IMODE(link.st_mode),
                               "it is a symbolic link made by another user")
    st = os.stat(path)
    if (path, st.st_ino) in _checked:
        return path
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStagingDir(path, _owner(st.st_uid), mode, "it is not a directory")
    if st.st_uid != uid:
        raise UnsafeStagingDir(path, _owner(st.st_uid), mode, "another user owns it")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStagingDir(path, _owner(st.st_uid), mode,
                               "other users may write in it, so its files may not be yours")
    if mode & 0o077:
        os.chmod(path, DIR_MODE)
    _checked.add((path, st.st_ino))
    return path
