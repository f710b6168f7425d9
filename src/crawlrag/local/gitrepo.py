"""Git repositories, read with the user's own `git`: cloned (bare) into a temporary folder, then the files tracked
at the ref are read from the object store. Nothing runs in a working tree, so neither the repository's hooks nor
its configuration (fsmonitor, filters) run, and symlinks and submodules are skipped rather than followed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crawlrag.crawl.results import PageSkipped
from crawlrag.local.entries import Entry, Found, is_read, too_large
from crawlrag.local.policy import LocalAccessError, member_url

_BLOB_MODES = ("100644", "100755")
_LINK_MODE = "120000"


class GitError(LocalAccessError):
    """`git` failed (not installed, not a repository, unknown ref, clone refused): the message has git's words."""


@dataclass(frozen=True, slots=True)
class Checkout:
    """A bare clone at a resolved commit; `ref` is what was asked for (HEAD when nothing was)."""

    git_dir: Path
    ref: str
    commit: str


def git_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def run_git(args: list[str], timeout: float, cwd: Path | None = None) -> bytes:
    # protocol.ext/fd: transports that run commands named in the URL; never wanted for a docs source.
    command = ["git", "-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never", *args]
    try:
        done = subprocess.run(
            command, cwd=cwd, env=git_environment(), capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise GitError("git repositories need the `git` command, and it is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {_name(args)}` took longer than GIT_TIMEOUT_SECONDS ({timeout:g} s)") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"`git {_name(args)}` failed: {message[-1] if message else f'exit status {done.returncode}'}")
    return done.stdout


def clone(clone_url: str, ref: str | None, into: Path, timeout: float) -> Checkout:
    git_dir = into / "repo.git"
    run_git(["clone", "--quiet", "--bare", "--no-hardlinks", "--", clone_url, str(git_dir)], timeout)
    wanted = ref or "HEAD"
    if wanted.startswith("-"):
        raise GitError(f"--ref {wanted!r} is not a branch, tag or commit")
    try:
        commit = run_git(
            ["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}"], timeout
        )
    except GitError:
        raise GitError(f"{clone_url}: there is no branch, tag or commit {wanted!r}") from None
    return Checkout(git_dir, wanted, commit.decode().strip())


@contextmanager
def cloned(clone_url: str, ref: str | None, timeout: float) -> Iterator[Checkout]:
    """A bare clone at `ref` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="crawlrag-git-") as scratch:
        yield clone(clone_url, ref, Path(scratch), timeout)


def tracked_files(checkout: Checkout, url: str, timeout: float, max_file_bytes: int) -> Iterator[Found]:
    """Entries for the files tracked at the checkout's commit (symlinks reported, submodules left out)."""
    listing = run_git(["--git-dir", str(checkout.git_dir), "ls-tree", "-r", "-l", "-z", checkout.commit], timeout)
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _kind, sha, size = meta.decode().split()
        name = raw_path.decode("utf-8", "surrogateescape")
        path = PurePosixPath(name)
        if not is_read(path):
            continue
        entry_url = member_url(url, name)
        if mode == _LINK_MODE:
            yield PageSkipped(entry_url, "symbolic link in the repository, not followed")
        elif mode not in _BLOB_MODES:
            continue  # submodules: another repository, indexed on its own if wanted
        elif int(size) > max_file_bytes:
            yield too_large(entry_url, int(size), max_file_bytes)
        else:
            yield Entry(path, entry_url, int(size), lambda sha=sha: _blob(checkout.git_dir, sha, timeout))


def _blob(git_dir: Path, sha: str, timeout: float) -> bytes:
    return run_git(["--git-dir", str(git_dir), "cat-file", "blob", sha], timeout)


def _name(args: list[str]) -> str:
    return args[2] if args[0] == "--git-dir" else args[0]
