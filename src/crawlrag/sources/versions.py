"""Versions of a documentation site: validation, the internal source key, detection from URLs, and their order.

A source is a (site, version) pair. Everything stored is keyed by one string, the *source key*
(`source_key(site, version)`): the site itself for the version `latest`, `site@version` for any other. Databases
made before versions existed hold sites only, and they are exactly the keys of version `latest`, so no stored
row changes key. Versions never contain `@` (see `check_version`) and new sites may not either (host names
cannot), so a key splits back into its pair at its last `@`.

Detection reads a version from the path where documentation sites put it (`/3.11/`, `/v2/`, `/v2.1.0/`, `/1.x/`,
`/en/stable/`, `/en/latest/`, `/docs/current/`); it is generic, never tied to a site. A URL without one is
version `latest`.

Order, newest first (`newest_first`): the aliases `latest`, `stable`, `current` (in that order), then versions
that read as numbers (`3.11`, `v2`, `2.1.0rc1`, `1.x`) from the highest down, compared part by part (`1.x` is
above every `1.N`, a pre-release below its release), then every other name (`dev`, `main`, `nightly`, `foo`) in
alphabetical order. A search without a version uses the first of a site's versions in this order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

LATEST = "latest"
MAX_VERSION_CHARS = 64
# The names that stand for "whatever is newest", ranked before every numbered version.
ALIASES = ("latest", "stable", "current")
# Other branch-like names a docs site puts where a version goes; they rank after numbered versions.
_BRANCHES = frozenset({"dev", "devel", "development", "main", "master", "nightly", "next", "preview"})

_VERSION_CHARS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]*[A-Za-z0-9])?")
# `3.11`, `v2.1.0`, `1.x`, `2.0rc1`, `4.0.0-beta.2`: a dotted release, or `v` and a number.
_TAG = r"(?:[-._]?(?:a|b|c|rc|alpha|beta|dev|pre|preview|post)\.?\d*)?"
_DOTTED = re.compile(r"v?\d{1,4}(?:\.(?:\d{1,6}|x))+" + _TAG, re.IGNORECASE)
_V_NUMBER = re.compile(r"v\d{1,4}" + _TAG, re.IGNORECASE)
# A bare `3` (docs.python.org/3/) counts only where a version sits: first, or after a language or docs segment.
_BARE_NUMBER = re.compile(r"\d{1,3}")
_LANGUAGE = re.compile(r"[a-z]{2}(?:[-_][a-z]{2,4})?", re.IGNORECASE)
_DOCS_WORDS = frozenset({"doc", "docs", "documentation", "manual", "api", "reference", "guide", "library"})

_NUMBERED = re.compile(r"v?(\d+(?:\.(?:\d+|x|\*))*)(?:[-._+]?([a-z]*)\.?(\d*))?(.*)", re.IGNORECASE)
_PRE_RELEASE = {"a": -3, "alpha": -3, "b": -2, "beta": -2, "pre": -1, "preview": -1, "rc": -1, "c": -1, "dev": -4}
_POST_RELEASE = {"post": 1, "p": 1, "patch": 1}
_ANY = 10**9  # `x` in `1.x`: above every number


class VersionError(ValueError):
    """A version string that cannot be used; the message says why."""


def check_version(value: object) -> str:
    """The version, stripped, or VersionError: 1 to 64 letters, digits, `.`, `_`, `+`, `-`, starting and ending
    with a letter or digit."""
    if not isinstance(value, str) or not value.strip():
        raise VersionError("version must be a non-empty string such as 2.1, v3 or latest")
    version = value.strip()
    if len(version) > MAX_VERSION_CHARS:
        raise VersionError(f"version is {len(version)} characters long; the limit is {MAX_VERSION_CHARS}")
    if not _VERSION_CHARS.fullmatch(version):
        shown = version if len(version) <= 40 else version[:40] + "…"
        raise VersionError(
            f"version {shown!r} may hold only letters, digits, '.', '_', '+' and '-', and must start and end with "
            "a letter or digit"
        )
    return version


def source_key(site: str, version: str) -> str:
    """The one internal key of (site, version), under which its pages, chunks, vectors and jobs are stored."""
    if not site or "@" in site:
        raise VersionError(f"a site name must be non-empty and hold no '@', got {site!r}")
    version = check_version(version)
    return site if version == LATEST else f"{site}@{version}"


def split_source_key(key: str) -> tuple[str, str]:
    """(site, version) of a key made by `source_key`."""
    site, at, version = key.rpartition("@")
    if at and site and _VERSION_CHARS.fullmatch(version):
        return site, version
    return key, LATEST


@dataclass(frozen=True, slots=True)
class DetectedVersion:
    version: str
    prefix: str  # the URL up to and including the version's path segment, with a trailing `/`


def detect_version(url: str) -> DetectedVersion | None:
    """The version an http(s) URL's path names, or None. The leftmost segment that reads as one wins."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    segments = parts.path.split("/")[1:]
    for position, segment in enumerate(segments):
        version = _segment_version(segment, segments[:position])
        if version is not None:
            prefix_path = "/".join(["", *segments[: position + 1]]) + "/"
            return DetectedVersion(version, urlunsplit((parts.scheme, parts.netloc, prefix_path, "", "")))
    return None


def _segment_version(segment: str, before: list[str]) -> str | None:
    if len(segment) > MAX_VERSION_CHARS or not segment:
        return None
    if _DOTTED.fullmatch(segment) or _V_NUMBER.fullmatch(segment):
        return segment
    where_versions_sit = not before or (
        len(before) == 1 and (_LANGUAGE.fullmatch(before[0]) is not None or before[0].lower() in _DOCS_WORDS)
    )
    if not where_versions_sit:
        return None
    lowered = segment.lower()
    if lowered in ALIASES or lowered in _BRANCHES:
        return lowered
    if _BARE_NUMBER.fullmatch(segment):
        return segment
    return None


def version_order(version: str) -> tuple[object, ...]:
    """Sort key: ascending order of these keys is newest first (see the module docstring)."""
    lowered = version.lower()
    if lowered in ALIASES:
        return (0, ALIASES.index(lowered))
    match = _NUMBERED.fullmatch(version)
    if match and not match.group(4):
        release = [(_ANY if part in ("x", "X", "*") else int(part)) for part in match.group(1).split(".")]
        release += [0] * (6 - len(release))
        tag, number = match.group(2).lower(), match.group(3)
        if not tag and not number:
            stage = 0
        elif tag in _PRE_RELEASE:
            stage = _PRE_RELEASE[tag]
        elif tag in _POST_RELEASE or (not tag and number):
            stage = 1
        else:
            stage = -5  # an unknown suffix: below the release it decorates
        return (1, tuple(-part for part in release[:6]), -stage, -int(number or 0), version)
    return (2, lowered, version)


def newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=version_order)
