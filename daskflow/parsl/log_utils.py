"""``parsl.set_stream_logger`` and ``set_file_logger``, as Parsl's: a
handler on the named logger (``parsl`` by default; ``daskflow`` is where
daskflow logs)."""

from __future__ import annotations

import logging
from typing import Callable

from ..private import touch_file

FORMAT = "%(asctime)s %(name)s:%(lineno)d [%(levelname)s]  %(message)s"
#: a log file's lines, as Parsl writes them: the epoch time first, for tools
#: (and Parsl's tests) that read parsl.log
FILE_FORMAT = ("%(created)f %(asctime)s %(processName)s-%(process)d "
               "%(threadName)s-%(thread)d %(name)s:%(lineno)d %(funcName)s %(levelname)s: "
               "%(message)s")


def _add(name: str, level: int, handler: logging.Handler,
         format_string: str | None) -> Callable[[], None]:
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(format_string or FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)

    def remove() -> None:
        logger.removeHandler(handler)
        handler.close()

    return remove


def set_stream_logger(name: str = "parsl", level: int = logging.DEBUG,
                      format_string: str | None = None, stream=None) -> Callable[[], None]:
    """Log ``name`` to ``stream`` (stderr); returns a function removing the handler."""
    return _add(name, level, logging.StreamHandler(stream), format_string)


def set_file_logger(filename: str, name: str = "parsl", level: int = logging.DEBUG,
                    format_string: str | None = None) -> Callable[[], None]:
    """Log ``name`` to ``filename`` (created 0600: logs are the user's own);
    returns a function removing the handler."""
    try:
        touch_file(filename)
    except FileExistsError:
        pass
    return _add(name, level, logging.FileHandler(filename), format_string or FILE_FORMAT)


__all__ = ["set_file_logger", "set_stream_logger"]
