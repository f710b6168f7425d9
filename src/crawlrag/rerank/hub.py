"""Where a model comes from: a local directory, the local Hugging Face cache, or (only if reachable) the hub.

Without a network, loading a hub id makes transformers retry for ~46 s before failing. Deciding up
front whether the hub can be reached (HF_HUB_OFFLINE, or a 1 s TCP connect) turns that into an immediate,
clear error.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from crawlrag.rerank.errors import HubUnreachableError, ModelLoadError, is_transient

log = logging.getLogger(__name__)

# "name" or "org/name" with the characters the hub allows; anything else is meant as a filesystem path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


@dataclass(frozen=True)
class ModelSource:
    name: str  # as configured
    location: str  # a local directory, or the hub id when it has to be downloaded
    local: bool  # True: load with local_files_only so no library calls the hub

    @property
    def path(self) -> Path | None:
        return Path(self.location) if self.local else None


class HubProbe:
    """Answers "is the hub reachable?" once per probe and finds models already in the local HF cache."""

    def __init__(
        self,
        *,
        offline: bool | None = None,
        endpoint: str | None = None,
        timeout: float = 1.0,
        cache_dir: Path | None = None,  # None: huggingface_hub's own (HF_HUB_CACHE)
    ) -> None:
        if offline is None or endpoint is None:
            # huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT; crawlrag never reads the environment.
            from huggingface_hub import constants

            offline = constants.HF_HUB_OFFLINE if offline is None else offline
            endpoint = constants.ENDPOINT if endpoint is None else endpoint
        self.offline = bool(offline)
        self.endpoint = endpoint
        self.timeout = timeout
        self.cache_dir = cache_dir
        self._reachable: bool | None = None
        self._lock = threading.Lock()

    def reachable(self) -> bool:
        with self._lock:
            if self._reachable is None:
                self._reachable = not self.offline and self._connects()
            return self._reachable

    def _connects(self) -> bool:
        parts = urlsplit(self.endpoint)
        host = parts.hostname or "huggingface.co"
        port = parts.port or (80 if parts.scheme == "http" else 443)
        result: list[bool] = []

        def attempt() -> None:
            try:
                self._open(host, port)
                result.append(True)
            except OSError as exc:
                log.info("Hugging Face hub %s:%d not reachable: %s", host, port, exc)

        # create_connection's timeout does not cover name resolution, which can hang for many seconds
        # without DNS; a daemon thread bounds the whole check.
        thread = threading.Thread(target=attempt, name="crawlrag-hub-probe", daemon=True)
        thread.start()
        thread.join(self.timeout + 0.5)
        return bool(result)

    def _open(self, host: str, port: int) -> None:
        with socket.create_connection((host, port), timeout=self.timeout):
            pass

    def cached_snapshot(self, repo_id: str) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(repo_id, "config.json", cache_dir=self.cache_dir)
        except Exception as exc:  # a malformed id or an unreadable cache: treat as not cached
            log.debug("HF cache lookup for %s failed: %s", repo_id, exc)
            return None
        return Path(found).parent if isinstance(found, str) else None


def looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and ".." not in name


def resolve_model_source(name: str, probe: HubProbe) -> ModelSource:
    """Find `name`, touching the network only if the hub is reachable; a permanent error if absent."""
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource(name, str(path.resolve()), local=True)
    if not looks_like_hub_id(name):
        raise ModelLoadError(f"model path {name} does not exist or is not a directory")
    cached = probe.cached_snapshot(name)
    if cached is not None:
        return ModelSource(name, str(cached), local=True)
    if probe.reachable():
        return ModelSource(name, name, local=False)
    raise HubUnreachableError(
        f"model {name} is not a local directory and the Hugging Face hub is not reachable "
        "(HF_HUB_OFFLINE=1 or no network); download it on a connected machine and set "
        "RERANKING_MODEL_NAME to its local path"
    )


def local_directory(source: ModelSource) -> Path:
    """A directory holding the model's files, downloading them first when the source is a hub id."""
    if source.path is not None:
        return source.path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.location))
    except Exception as exc:
        raise ModelLoadError(f"download of {source.location} failed: {exc}", transient=is_transient(exc)) from exc
