"""``parsl.data_provider.files.File``: daskflow's ``File`` with Parsl's manners.

daskflow's own ``File`` (``daskflow.files``) keeps the parts of Parsl's File
that do not clash with its documented contract: the URL's parts
(``scheme``, ``netloc``, ``path``, ``filename``), ``local_path`` before the
path in ``filepath``, ``os.fspath``, ``cleancopy()``, pickling that keeps
``local_path``. Three of Parsl's behaviours break that contract, so they
live in this subclass, which is the File Parsl scripts get:

* a Parsl File is mutable: staging providers and scripts set
  ``f.local_path`` (daskflow's File is immutable, and its tests say so);
* ``File("")`` is accepted (daskflow refuses an empty URL);
* ``str(f)`` is ``f.filepath``, so a remote File never staged raises
  ``ValueError("No local_path set for ...")`` (daskflow gives the URL), and
  ``repr`` lists the parts as Parsl does (with secrets in the URL masked).

Equality stays daskflow's (equal URLs and local paths; the hash is the
URL's), where Parsl compares identities: the Dask token of a File is its
URL, so two equal Files are the same data to the scheduler either way.
"""

from __future__ import annotations

import os

from ...files import File as _DaskflowFile
from ...redaction import redact_url

__all__ = ["File"]

#: attributes read from the URL: set again only by building a new File
_FROM_URL = ("url", "scheme", "netloc", "path", "filename")


class File(_DaskflowFile):
    """Parsl's ``File``: a daskflow ``File`` whose ``local_path`` may be set.

    Parameters
    ----------
    url : str or os.PathLike
        As daskflow's ``File``; the empty string is accepted, as in Parsl.
    """

    def __init__(self, url: str | os.PathLike[str]):
        if url == "":
            self._parse(url)
        else:
            super().__init__(url)

    def __setattr__(self, name, value):
        if name in _FROM_URL:
            raise AttributeError(f"File.{name} is read from the URL; build a new File "
                                 "to name other data")
        if name == "local_path" and value is not None and not isinstance(value, str):
            value = os.fspath(value)
        object.__setattr__(self, name, value)

    @property
    def filepath(self) -> str:
        """``local_path`` if set, else the path of a ``file`` URL.

        Raises
        ------
        ValueError
            A remote File with no ``local_path`` (Parsl's "No local_path set").
        """
        if self.local_path is not None:
            return self.local_path
        if self.is_local:
            return self.path
        raise ValueError(f"No local_path set for {self!r}: a {self.scheme}: File is read "
                         "where an app runs, after staging")

    def __str__(self) -> str:
        return self.filepath

    def __reduce__(self):  # as Parsl's: a script's own attributes travel too
        rebuild, args = super().__reduce__()
        return (rebuild, args, dict(self.__dict__) or None)

    def __repr__(self) -> str:
        url = redact_url(self.url)
        netloc = redact_url(f"x://{self.netloc}")[4:] if self.netloc else ""
        parts = [type(self).__name__, f"at 0x{id(self):x}", f"url={url}",
                 f"scheme={self.scheme}", f"netloc={netloc}", f"path={self.path}",
                 f"filename={self.filename}"]
        if self.local_path is not None:
            parts.append(f"local_path={self.local_path}")
        return f"<{' '.join(parts)}>"
