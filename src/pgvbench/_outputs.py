"""Output paths checked before any work starts: a read-only, immutable or misnamed output
location fails in one paragraph up front, not after an hour of measuring.

The checks probe for real (a temp file created and removed at once) rather than trusting
mode bits: root passes any mode check, but not a read-only mount or ``chattr +i``. They
never create a directory: a missing one is judged by its nearest existing ancestor, which
is where ``mkdir -p`` would have to write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import OutputError

_PROBE_PREFIX = ".pgvbench-write-test-"


def check_not_empty(value: str | None, option: str) -> None:
    """Raise :class:`OutputError` if an output option was given as an empty (or blank)
    string. Call it with the raw argument: ``Path("")`` is ``Path(".")``, so once made a
    Path an unquoted empty variable silently means the working directory."""
    if value is not None and not value.strip():
        raise OutputError(
            f"{option} is empty ({value!r}): give a path, or leave {option} out for the "
            "default (an empty variable in a script?)"
            if option.startswith("-")
            else f"{option} is empty ({value!r}): give a path (an empty variable in a script?)"
        )


def check_writable_dir(path: Path, *, what: str, option: str = "--out") -> None:
    """Raise :class:`OutputError` unless ``path`` is, or can be created as, a directory
    pgvbench can write into. ``what`` names the output ("the report", "results") and
    ``option`` the argument that chooses another location."""
    _check_dir(Path(path), what=what, hint=_hint("directory", option))


def check_writable_file(path: Path, *, what: str, option: str) -> None:
    """Raise :class:`OutputError` unless ``path`` can be written (whole, via a temp file
    beside it and a rename): its directory is writable or creatable, and the path is
    not a directory, a device or an immutable file."""
    path = Path(path)
    hint = _hint("file", option)
    found = _stat(path, what=what, hint=hint)
    if found is not None:
        mode = found.st_mode
        if stat.S_ISDIR(mode):
            raise OutputError(f"cannot write {what} to {path}: it is a directory. {hint}")
        if not stat.S_ISREG(mode):
            # the atomic writer renames over the path: a device or pipe would be replaced
            raise OutputError(
                f"cannot write {what} to {path}: it is a {_kind(mode)}, not a regular file "
                f"(pgvbench replaces output files whole). {hint}"
            )
    _check_dir(path.parent, what=what, hint=hint, shown=path)
    if found is not None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            # EACCES alone does not stop a rename in a writable directory; these do.
            if exc.errno in (errno.EPERM, errno.EROFS):
                raise OutputError(
                    f"cannot write {what} to {path}: {_reason(exc)}. {hint}"
                ) from None
        else:
            os.close(fd)


def _check_dir(directory: Path, *, what: str, hint: str, shown: Path | None = None) -> None:
    """``shown`` is the path the user named (a file inside ``directory``, or itself)."""
    shown = directory if shown is None else shown
    absolute = Path(os.path.abspath(directory))
    for candidate in (absolute, *absolute.parents):
        found = _stat(candidate, what=what, hint=hint, shown=shown)
        if found is None:
            # mkdir -p fails with EEXIST on a link to nowhere: say so now, not after the work
            target = _dangling_target(candidate)
            if target is not None:
                where = "it" if candidate == Path(os.path.abspath(shown)) else str(candidate)
                raise OutputError(
                    f"cannot write {what} to {shown}: {where} is a symbolic link to {target}, "
                    "which does not exist. Create that directory, remove the link, or "
                    f"{hint[0].lower()}{hint[1:]}"
                )
            continue
        if not stat.S_ISDIR(found.st_mode):
            where = "it" if candidate == Path(os.path.abspath(shown)) else str(candidate)
            raise OutputError(
                f"cannot write {what} to {shown}: {where} is a {_kind(found.st_mode)}, "
                f"not a directory. {hint}"
            )
        if candidate != absolute:
            where = f"{candidate} (where it would be created) is not writable: "
        elif shown is not directory:
            where = f"{candidate} is not writable: "
        else:
            where = ""
        _probe(candidate, failure=f"cannot write {what} to {shown}: {where}", hint=hint)
        return
    raise OutputError(f"cannot write {what} to {shown}: no part of the path exists. {hint}")


def _stat(path: Path, *, what: str, hint: str, shown: Path | None = None) -> os.stat_result | None:
    """The path's stat, None if it does not exist (or a parent is not a directory)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} to {shown or path}: cannot look at {path}: {_reason(exc)}. {hint}"
        ) from None


def _dangling_target(path: Path) -> str | None:
    """Where ``path`` points if it is a symbolic link whose target is missing."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return os.readlink(path)
    except OSError:
        pass
    return None


def _probe(directory: Path, *, failure: str, hint: str) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=directory)
    except OSError as exc:
        raise OutputError(f"{failure}{_reason(exc)}. {hint}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def _reason(exc: OSError) -> str:
    code = exc.errno
    if code is None:
        return str(exc)
    text = os.strerror(code)
    text = text[:1].lower() + text[1:]
    name = errno.errorcode.get(code)
    reason = f"{text} ({name})" if name else text
    if code == errno.EPERM:
        reason += ", e.g. an immutable (chattr +i) or append-only directory or file"
    return reason


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "directory" if stat.S_ISDIR(mode) else "special file"


def _hint(kind: str, option: str) -> str:
    return (
        f"Choose another {kind} with {option}."
        if option.startswith("-")
        else f"Choose another {option}."
    )
