"""Reading the text files a user hands pgvbench (TOML specs, JSON results).

A binary file, a UTF-16 export from an editor or a file in a legacy encoding must end in
one message naming the file and the first offending byte, never a UnicodeDecodeError.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PgvbenchError

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"  # some editors write it; harmless, so dropped


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
