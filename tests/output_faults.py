"""Unwritable output locations for tests that run as root (CI does): mode bits do not stop
root, so these use a read-only mount, the immutable attribute, a dropped uid, or a path
through a regular file. Each skips with its reason when this machine cannot make it,
except ``through_a_file``, which works anywhere."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def readonly_mount(directory: Path) -> Iterator[Path]:
    """``directory`` (created empty) as a read-only tmpfs: writes fail with EROFS."""
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a read-only file system")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "pgvbench-test-ro", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True, capture_output=True)


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """``path`` (an existing file or directory) with chattr +i: writes fail with EPERM."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr command: cannot make an immutable directory")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)


def through_a_file(tmp_path: Path) -> Path:
    """A path whose parent is a regular file: not writable for anyone, root included."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory\n")
    return blocker / "sub"


def as_unprivileged_user(action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child as ``nobody`` (root) or as is (others), returning
    the text it returns; mode bits apply there."""
    if os.geteuid() != 0:
        return action()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user to drop root privileges to")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            text = action()
        except BaseException as exc:  # reported to the parent
            text, code = f"{type(exc).__name__}: {exc}", 1
        with os.fdopen(write, "w") as out:
            out.write(text)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text
