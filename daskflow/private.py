"""Files and directories that only their user can reach.

A login node is shared: what daskflow writes (run records, kept results, the
signing key, staged files) must not be readable, let alone writable, by other
users, whatever the process's umask. Directories are made 0700 and files
0600 from the moment they exist (never created wider and narrowed later),
without touching the umask, which belongs to the user's program.
"""

from __future__ import annotations

import os

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_dir(path: str, exist_ok: bool = True) -> bool:
    """Create the directory ``path`` 0700 (its parent must exist); returns
    whether it was created. An existing one is left as it is, or raises
    ``FileExistsError`` when ``exist_ok`` is false."""
    try:
        os.mkdir(path, DIR_MODE)  # the umask can only narrow this
    except FileExistsError:
        if not exist_ok:
            raise
        return False
    os.chmod(path, DIR_MODE)  # exactly 0700, whatever the umask
    return True


def makedirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` with every new level 0700 (not
    only the last one, as ``os.makedirs(mode=)`` does)."""
    if os.path.isdir(path):
        return
    head = os.path.dirname(path)
    if head and head != path:
        makedirs(head)
    make_dir(path)


def create_file(path: str, flags: int = os.O_WRONLY) -> int:
    """Create ``path``, which must not exist, 0600; returns the open
    descriptor (``flags``: its access mode)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def touch_file(path: str) -> None:
    """Create the empty file ``path`` 0600 (a writer that opens it later
    keeps its mode)."""
    os.close(create_file(path))
