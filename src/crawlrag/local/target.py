"""What a crawl target names when it is not a web site: a folder, a file, an archive or a git repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from crawlrag.local.policy import LocalAccessError, check_allowed, file_url, path_from_file_url

GIT_SCHEMES = ("git+https://", "git+ssh://", "git+file://")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
# What `git clone` gets: a remote URL, never an option or a transport helper ("ext::", "fd::").
_REMOTE_GIT = re.compile(r"^(https|ssh)://[^\s]+$")


class TargetKind(StrEnum):
    FOLDER = "folder"
    FILE = "file"
    ARCHIVE = "archive"
    GIT = "git"


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """What the CLI adds for local targets: the source id to file pages under and the git ref to read."""

    source_id: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A resolved local target. `path` is the checked, resolved path (None for a remote repository); `url` is
    the stable URL pages are filed under (`file:///…` or `git+…`) and `name` the default source id."""

    kind: TargetKind
    url: str
    name: str
    path: Path | None = None
    clone_url: str | None = None  # what `git clone` is given, for repositories


def is_local_target(target: str) -> bool:
    """True for `file://` URLs, `git+…` URLs and paths (absolute, relative, "~") rather than web addresses."""
    text = target.strip()
    lowered = text.lower()
    if lowered.startswith(("file:", *GIT_SCHEMES)):
        return True
    if "://" in text:
        return False
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..") or Path(text).exists()


def resolve_target(target: str, allowed_paths: list[str]) -> LocalTarget:
    """Check `target` against ALLOWED_PATHS and say what it is; LocalAccessError when it may not be read."""
    text = target.strip()
    lowered = text.lower()
    if lowered.startswith(("git+https://", "git+ssh://")):
        return _remote_repository(text[len("git+") :])
    if lowered.startswith("git+file://"):
        path = check_allowed(path_from_file_url(text[len("git+") :]), allowed_paths)
        return _repository(path)
    path = path_from_file_url(text) if lowered.startswith("file:") else Path(text)
    if not path.expanduser().is_absolute():
        path = Path.cwd() / path.expanduser()
    resolved = check_allowed(path, allowed_paths)
    if not resolved.exists():
        raise LocalAccessError(f"Cannot read {text!r}: {str(resolved)!r} does not exist")
    if resolved.is_dir():
        if (resolved / ".git").exists() and not lowered.startswith("file:"):
            # A plain path to a checkout is read as a repository (tracked files at a ref); a file:// URL to the
            # same folder reads the folder as it is on disk.
            return _repository(resolved)
        return LocalTarget(TargetKind.FOLDER, file_url(resolved) + "/", resolved.name or "root", resolved)
    if not resolved.is_file():
        raise LocalAccessError(f"Cannot read {text!r}: {str(resolved)!r} is not a regular file or folder")
    kind = TargetKind.ARCHIVE if resolved.name.lower().endswith(ARCHIVE_SUFFIXES) else TargetKind.FILE
    return LocalTarget(kind, file_url(resolved), resolved.name, resolved)


def _repository(path: Path) -> LocalTarget:
    if not path.is_dir():
        raise LocalAccessError(f"Cannot read the repository {str(path)!r}: it is not a folder")
    return LocalTarget(TargetKind.GIT, "git+" + file_url(path), _repo_name(path.name), path, clone_url=str(path))


def _remote_repository(url: str) -> LocalTarget:
    parts = urlsplit(url)
    if not _REMOTE_GIT.match(url) or not parts.hostname:
        raise LocalAccessError(f"Cannot clone {url!r}: expected git+https://HOST/PATH or git+ssh://HOST/PATH")
    if parts.password is not None:
        raise LocalAccessError("Cannot clone a URL with a password in it: use git's credential helper or ssh keys")
    name = _repo_name(parts.path.rstrip("/").rsplit("/", 1)[-1]) or parts.hostname
    return LocalTarget(TargetKind.GIT, "git+" + url.rstrip("/"), name, None, clone_url=url)


def _repo_name(name: str) -> str:
    return name.removesuffix(".git") or name
