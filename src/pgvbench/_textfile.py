"""Reading the text files a user hands pgvbench (TOML specs, JSON results).

A binary file, a UTF-16 export from an editor or a file in a legacy encoding must end in
one message naming the file and the first offending byte, never a UnicodeDecodeError.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import PgvbenchError

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"  # some editors write it; harmless, so dropped


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int, path: Path) -> OSError | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "it is a directory", str(path))
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return OSError(errno.EINVAL, f"it is {kind}, not a regular file", str(path))


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file (symlinks followed).

    A FIFO or a terminal would block the read forever and a device never ends, so they
    raise OSError (IsADirectoryError for a directory) whose strerror says what it is.
    """
    problem = _not_regular(path.stat().st_mode, path)
    if problem:
        raise problem
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open cannot block
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        problem = _not_regular(os.fstat(fd).st_mode, path)
        if problem:
            raise problem
        return f.read()


def decode_text(data: bytes, path: Path, *, what: str, error: type[PgvbenchError]) -> str:
    """``data`` as UTF-8 text (a leading BOM is dropped); else ``error`` naming the byte.

    ``what`` names the file's role, e.g. "a spec file", for the message.
    """
    if data.startswith(_UTF16_BOMS):
        raise error(
            f"{path}: not a UTF-8 text file (byte 0x{data[0]:02x} at offset 0: it starts "
            f"with a UTF-16 byte order mark); {what} must be UTF-8, so re-save it as UTF-8"
        )
    bom = 3 if data.startswith(_UTF8_BOM) else 0
    try:
        text, bad = data[bom:].decode("utf-8"), -1
    except UnicodeDecodeError as exc:
        text, bad = "", exc.start + bom
    nul = data.find(b"\x00")  # the first sign of a binary file, if it comes first
    if nul >= 0 and (bad < 0 or nul < bad):
        raise error(
            f"{path}: not a text file (byte 0x00 at offset {nul}); {what} must be UTF-8 "
            "text: check that the path names the right file"
        )
    if bad >= 0:
        raise error(
            f"{path}: not a UTF-8 text file (byte 0x{data[bad]:02x} at offset {bad}); "
            f"{what} must be UTF-8 text: check that the path names the right file, or "
            "re-save it as UTF-8"
        )
    return text
