"""``File``: a reference to data by URL, as Parsl's ``parsl.data_provider.files.File``.

A File names data by URL (a bare path means ``file://``). Apps receive Files
as arguments (``inputs=``/``outputs=`` or anywhere else) and use
``f.filepath`` (or ``os.fspath(f)``, or ``f"{f}"`` in a bash command) to reach
the data on the worker; a remote File (``https://``, ``s3://``, ``globus://``…)
is given a local path there by staging (``daskflow.staging``). Files are
small, immutable and picklable; their Dask token is their URL, so calls with
equal Files get equal cache keys.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

LOCAL_SCHEMES = ("file",)


class File(os.PathLike):
    """A file named by a local path or a URL, as Parsl's ``File``.

    Apps get Files as arguments and reach the data with ``f.filepath``,
    ``os.fspath(f)`` or ``f"{f}"`` (in a bash command). A remote File in
    ``inputs=``, ``outputs=`` or passed directly is staged: fetched to the
    worker before the app runs, or uploaded after it. Files are immutable and
    pickle; their Dask token is their URL, so equal Files give equal cache
    keys.

    Parameters
    ----------
    url : str or os.PathLike
        ``"data/x.txt"``, ``"/abs/x.txt"``, ``"file:///abs/x.txt"`` or a remote
        URL such as ``"https://host/x.txt"``.

    Raises
    ------
    TypeError
        ``url`` is empty or not a string or path.

    Attributes
    ----------
    url : str
        As given (a bare path stays a path).
    scheme : str
        ``"file"`` for local paths, else the URL's scheme, lower-cased.
    netloc, path : str
        The URL's host part and path.

    Examples
    --------
    >>> f = File("file:///tmp/a.txt")
    >>> f.scheme, f.filepath
    ('file', '/tmp/a.txt')
    """

    __slots__ = ("url", "scheme", "netloc", "path", "local_path")

    def __init__(self, url: str | os.PathLike[str]):
        if isinstance(url, File):
            url = url.url
        if isinstance(url, os.PathLike):
            url = os.fspath(url)
        if not isinstance(url, str) or not url:
            raise TypeError(f"File() needs a non-empty path or URL string, got {url!r}")
        self._parse(url)

    def _parse(self, url: str) -> None:
        """Set the URL and its parts (``local_path``: None)."""
        parts = urlsplit(url)
        if len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive letter
            scheme, netloc, path = parts.scheme.lower(), parts.netloc, parts.path
        else:
            scheme, netloc, path = "file", "", url
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "netloc", netloc)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "local_path", None)

    def __setattr__(self, name, value):
        raise AttributeError("File is immutable; build a new File instead")

    @property
    def filename(self) -> str:
        """The last component of the path."""
        return os.path.basename(self.path)

    @property
    def is_local(self) -> bool:
        """Whether the file is on the worker's file system (``file://``)."""
        return self.scheme in LOCAL_SCHEMES

    @property
    def filepath(self) -> str:
        """Where the app reads or writes this file on the worker.

        Raises
        ------
        ValueError
            A remote File that has not been staged: outside an app, or
            nested in another argument.
        """
        if self.local_path is not None:
            return self.local_path
        if self.is_local:
            return self.path
        raise ValueError(
            f"File {_redact(self.url)!r} is remote ({self.scheme}://) and has not been staged "
            "to a local path; pass it to an app in inputs=/outputs= to stage it"
        )

    def with_local_path(self, local_path: str) -> File:
        """A copy of this File that the app sees at ``local_path``.

        Parameters
        ----------
        local_path : str
            Where staging put the data on the worker.

        Returns
        -------
        File
            Equal URL; `filepath` is ``local_path``.
        """
        return _rebuild(self.url, local_path, type(self))

    def cleancopy(self) -> File:
        """A copy with only the URL, as when built: no `local_path` (Parsl's name).

        Returns
        -------
        File
            Of the same class, equal URL, ``local_path`` None.
        """
        return _rebuild(self.url, None, type(self))

    def exists(self) -> bool:
        """Whether the file exists at `filepath`."""
        return os.path.exists(self.filepath)

    def __fspath__(self) -> str:
        return self.filepath

    def __str__(self) -> str:
        return self.filepath if (self.is_local or self.local_path) else self.url

    def __repr__(self) -> str:  # redacted: reprs end up in logs and records
        return f"<File {_redact(self.url)}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, File) and (self.url, self.local_path) == (
            other.url,
            other.local_path,
        )

    def __hash__(self) -> int:
        return hash(("daskflow.File", self.url))

    def __reduce__(self):
        if type(self) is File:  # the pickles of earlier versions: (url, local_path)
            return (_rebuild, (self.url, self.local_path))
        return (_rebuild, (self.url, self.local_path, type(self)))

    def __dask_tokenize__(self):
        return ("daskflow.File", self.url)


def _redact(url: str) -> str:
    from .redaction import redact_url

    return redact_url(url)


def _rebuild(url: str, local_path: str | None, cls: type = File) -> File:
    f = cls.__new__(cls)
    f._parse(url)
    if local_path is not None:
        object.__setattr__(f, "local_path", local_path)
    return f
