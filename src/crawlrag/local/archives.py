"""The files inside a .zip, .tar, .tar.gz or .tgz archive, read in memory (nothing is extracted to disk).

Limits (settings): ARCHIVE_MAX_FILES entries, ARCHIVE_MAX_BYTES uncompressed in all, ARCHIVE_MAX_RATIO between
uncompressed and compressed size (per zip entry; for the whole stream of a compressed tar), LOCAL_MAX_FILE_BYTES
per file. Entries whose name is absolute or climbs out with ".." and links of any kind are refused by name, with
the reason; the other entries are still read.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crawlrag.crawl.results import PageFailure, PageSkipped
from crawlrag.local.entries import Entry, Found, is_read, too_large
from crawlrag.local.policy import member_url


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_bytes: int
    max_files: int
    max_ratio: float
    max_file_bytes: int


def walk_archive(path: Path, url: str, limits: ArchiveLimits) -> Iterator[Found]:
    if path.name.lower().endswith(".zip"):
        yield from _zip(path, url, limits)
    else:
        yield from _tar(path, url, limits)


def member_path(name: str) -> PurePosixPath | None:
    """The entry's path inside the archive, or None when it is absolute or leaves the archive."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        return None
    parts: list[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts) if parts else None


def _zip(path: Path, url: str, limits: ArchiveLimits) -> Iterator[Found]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield PageFailure(url, f"not a readable zip archive: {exc}")
        return
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_files:
            yield PageFailure(url, f"archive refused: {len(infos)} entries, ARCHIVE_MAX_FILES is {limits.max_files}")
            return
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_bytes:
            yield PageFailure(
                url, f"archive refused: it expands to {declared} bytes, ARCHIVE_MAX_BYTES is {limits.max_bytes}"
            )
            return
        for info in infos:
            inner = member_path(info.filename)
            entry_url = member_url(url, info.filename)
            if inner is None:
                yield PageSkipped(entry_url, f"path traversal: {info.filename!r} leaves the archive, refused")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                yield PageSkipped(entry_url, "symbolic link in the archive, not followed")
                continue
            if not is_read(inner):
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                yield PageSkipped(
                    entry_url,
                    f"compression ratio {ratio:.0f}:1 exceeds ARCHIVE_MAX_RATIO ({limits.max_ratio:g}), refused "
                    "as a possible zip bomb",
                )
                continue
            # zipfile stops reading at the declared size, so the sizes checked above are what gets read.
            yield Entry(inner, entry_url, info.file_size, lambda info=info: archive.read(info))


def _tar(path: Path, url: str, limits: ArchiveLimits) -> Iterator[Found]:
    compressed = max(path.stat().st_size, 1)
    try:
        archive = tarfile.open(path, mode="r:*")  # noqa: SIM115 (closed by the `with` below, after the error check)
    except (tarfile.TarError, OSError) as exc:
        yield PageFailure(url, f"not a readable tar archive: {exc}")
        return
    with archive:
        count = 0
        total = 0
        try:
            for info in archive:  # headers are read as the stream goes: limits are checked on the way
                if info.isdir():
                    continue
                count += 1
                total += info.size
                if count > limits.max_files:
                    yield PageFailure(url, f"archive stopped: more than ARCHIVE_MAX_FILES ({limits.max_files}) entries")
                    return
                if total > limits.max_bytes or total / compressed > limits.max_ratio:
                    yield PageFailure(
                        url,
                        f"archive stopped: it expands to more than {total} bytes from {compressed} "
                        f"(ARCHIVE_MAX_BYTES {limits.max_bytes}, ARCHIVE_MAX_RATIO {limits.max_ratio:g})",
                    )
                    return
                yield from _tar_entry(archive, info, url, limits.max_file_bytes)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            yield PageFailure(url, f"archive unreadable after {count} entries: {exc}")


def _tar_entry(archive: tarfile.TarFile, info: tarfile.TarInfo, url: str, max_file_bytes: int) -> Iterator[Found]:
    inner = member_path(info.name)
    entry_url = member_url(url, info.name)
    if inner is None:
        yield PageSkipped(entry_url, f"path traversal: {info.name!r} leaves the archive, refused")
    elif info.issym() or info.islnk():
        yield PageSkipped(entry_url, f"link in the archive (to {info.linkname!r}), not followed")
    elif not info.isfile():
        yield PageSkipped(entry_url, "not a regular file in the archive")
    elif not is_read(inner):
        return
    elif info.size > max_file_bytes:
        yield too_large(entry_url, info.size, max_file_bytes)
    else:
        # Read now: a compressed tar is a stream, so the entry's bytes are gone once the next header is read.
        handle = archive.extractfile(info)
        data = handle.read() if handle is not None else b""
        yield Entry(inner, entry_url, info.size, lambda: data)
