"""The files of a folder: `.gitignore` files honoured, hidden and build-output folders skipped, links not followed
out of the folder (a symlink whose target is outside it is reported and not read)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pathspec

from crawlrag.crawl.results import PageSkipped
from crawlrag.local.entries import Entry, Found, is_read, skipped_folder
from crawlrag.local.policy import file_url, is_within


def walk_folder(root: Path) -> Iterator[Found]:
    """Entries for the readable files under `root` (already resolved and checked against ALLOWED_PATHS)."""
    # (folder relative to root, its .gitignore); a nested .gitignore applies to paths relative to its folder.
    ignores: list[tuple[PurePosixPath, pathspec.GitIgnoreSpec]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        relative = PurePosixPath(here.relative_to(root).as_posix())
        ignores = [(base, spec) for base, spec in ignores if _under(relative, base)]
        spec = _gitignore(here / ".gitignore")
        if spec is not None:
            ignores.append((relative, spec))
        dirs[:] = sorted(d for d in dirs if not skipped_folder(d) and not _ignored(relative / d, ignores, folder=True))
        for name in sorted(files):
            path = relative / name
            if not is_read(path) or _ignored(path, ignores, folder=False):
                continue
            yield from _entry(root, here / name, path)


def _entry(root: Path, full: Path, path: PurePosixPath) -> Iterator[Found]:
    url = file_url(full)
    if full.is_symlink():
        target = full.resolve()
        if not is_within(target, root):
            # The check that keeps ALLOWED_PATHS whole: the link's target was never checked against it.
            yield PageSkipped(url, "symbolic link to a file outside the folder, not followed")
            return
        full = target
    try:
        size = full.stat().st_size
    except OSError as exc:
        yield PageSkipped(url, f"cannot read: {exc.strerror or exc}")
        return
    yield Entry(path, url, size, lambda: _read_no_follow(full))


def _read_no_follow(path: Path) -> bytes:
    # O_NOFOLLOW: a file swapped for a symlink after the check above is refused, not followed.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _gitignore(path: Path) -> pathspec.GitIgnoreSpec | None:
    if not path.is_file() or path.is_symlink():
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(path.read_text("utf-8", errors="replace").splitlines())
    except (OSError, ValueError):
        return None


def _under(path: PurePosixPath, base: PurePosixPath) -> bool:
    return base == PurePosixPath(".") or path == base or path.is_relative_to(base)


def _ignored(path: PurePosixPath, ignores: list[tuple[PurePosixPath, pathspec.GitIgnoreSpec]], *, folder: bool) -> bool:
    for base, spec in ignores:
        relative = path if base == PurePosixPath(".") else path.relative_to(base)
        if spec.match_file(relative.as_posix() + ("/" if folder else "")):
            return True
    return False
