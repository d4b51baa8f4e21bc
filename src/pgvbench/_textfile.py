"""Reading the text files a user hands pgvbench (TOML specs, JSON results).

A binary file, a UTF-16 export from an editor or a file in a legacy encoding must end in
one message naming the file and the first offending byte, never a UnicodeDecodeError.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PgvbenchError

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_text(data: bytes, path: Path, *, what: str, error: type[PgvbenchError]) -> str:
    """``data`` as UTF-8 text (a leading BOM is dropped); else ``error`` naming the byte.

    ``what`` names the file's role, e.g. "a spec file", for the message.
    """
    if data.startswith(_UTF16_BOMS):
        raise error(
            f"{path}: not a UTF-8 text file (byte 0x{data[0]:02x} at offset 0: it starts "
            f"with a UTF-16 byte order mark); {what} must be UTF-8, so re-save it as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        raise error(
            f"{path}: not a UTF-8 text file (byte 0x{data[offset]:02x} at offset {offset}); "
            f"{what} must be UTF-8 text: check that the path names the right file, or "
            "re-save it as UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(text[:nul].encode("utf-8")) + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        raise error(
            f"{path}: not a text file (byte 0x00 at offset {offset}); {what} must be UTF-8 "
            "text: check that the path names the right file"
        )
    return text
