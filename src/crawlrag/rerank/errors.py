"""Exceptions of the reranker and the rule that decides which load errors are worth retrying."""

from __future__ import annotations

import errno


class RerankUnavailable(Exception):
    """Reranking cannot be applied now; `str(exc)` is the human-readable reason the caller reports."""


class ModelLoadError(Exception):
    """A model could not be loaded; `transient` says whether trying again might help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class HubUnreachableError(ModelLoadError):
    """The model is neither a local directory nor cached, and the Hugging Face hub cannot be reached."""


class ValidationFailedError(ModelLoadError):
    """The model loaded but its dummy inference produced unusable scores."""


# Errors that come from the network or a busy resource: a second try a moment later can succeed.
_TRANSIENT_ERRNOS = {
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
}
_TRANSIENT_NAME_PARTS = ("Timeout", "ConnectError", "ConnectionError", "RemoteProtocolError")


def is_transient(exc: BaseException) -> bool:
    """Whether a failed load is worth retrying (network hiccup, busy file), not certain to fail again."""
    if isinstance(exc, ModelLoadError):
        return exc.transient
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    # requests/httpx/huggingface_hub errors are matched by name so that none of them has to be imported here.
    for cls in type(exc).__mro__:
        if any(part in cls.__name__ for part in _TRANSIENT_NAME_PARTS):
            return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA and MPS report exhaustion as RuntimeError subclasses whose message says "out of memory"."""
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
