"""Which local files may be read: only those whose real path lies under one of the ALLOWED_PATHS roots.

Every path is resolved (symlinks, "..", "~") before it is compared with the roots, and the roots themselves are
resolved when the settings are read, so neither a symlink inside an allowed tree nor `/a/../etc` reaches outside.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from crawlrag.crawl.urls import CrawlInputError

# Characters left unescaped in the path part of the URLs built here; "&" and "#" separate members and sections.
_MEMBER_SAFE = "/:@!$'()*+,;=~-._"


class LocalAccessError(CrawlInputError):
    """A local path crawlrag may not read (outside ALLOWED_PATHS) or cannot read (missing, wrong kind)."""


def check_allowed(path: Path, allowed_paths: list[str]) -> Path:
    """The resolved `path`, or LocalAccessError when it is not inside one of the (resolved) ALLOWED_PATHS."""
    resolved = path.expanduser().resolve()
    if not allowed_paths:
        raise LocalAccessError(
            f"Cannot read {str(path)!r}: local paths are disabled; set ALLOWED_PATHS to a comma list of "
            "directories crawlrag may read (empty by default)"
        )
    if not any(is_within(resolved, Path(root)) for root in allowed_paths):
        raise LocalAccessError(
            f"Cannot read {str(path)!r} (resolves to {str(resolved)!r}): it is outside ALLOWED_PATHS "
            f"({', '.join(allowed_paths)})"
        )
    return resolved


def is_within(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def path_from_file_url(url: str) -> Path:
    """The path a `file://` URL names (host empty or localhost, percent escapes decoded)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise LocalAccessError(f"{url!r} is not a file:// URL")
    if parts.netloc not in ("", "localhost"):
        raise LocalAccessError(f"Cannot read {url!r}: file:// URLs on another host ({parts.netloc}) are not supported")
    if parts.query or parts.fragment:
        raise LocalAccessError(f"Cannot read {url!r}: a file:// start URL has no query or fragment")
    path = unquote(parts.path)
    if "\x00" in path:
        raise LocalAccessError(f"Cannot read {url!r}: the path contains a NUL character")
    return Path(path)


def file_url(path: Path) -> str:
    """The `file://` URL of an absolute path, escaped so that it round-trips through `path_from_file_url`."""
    return "file://" + quote(path.as_posix(), safe=_MEMBER_SAFE, errors="surrogateescape")


def member_url(container: str, member: str) -> str:
    """A file inside an archive or a repository: the container's URL, then "#/" and the member's path."""
    return container + "#/" + quote(member.lstrip("/"), safe=_MEMBER_SAFE, errors="surrogateescape")


def section_url(document: str, section: str) -> str:
    """A part of a document (`page=12`, an OpenAPI operation): added to the fragment, "&"-joined."""
    return f"{document}{'&' if '#' in document else '#'}{section}"
