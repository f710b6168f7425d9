"""Where crawl4ai may keep its files; decided before crawl4ai is imported (it creates the folder on import)."""

from __future__ import annotations

import os
import tempfile

import platformdirs


def crawl4ai_directory() -> str:
    """The user cache folder, or a temporary one for accounts without a writable home (HOME=/nonexistent)."""
    preferred = platformdirs.user_cache_dir("crawlrag", appauthor=False)
    try:
        os.makedirs(preferred, exist_ok=True)
    except OSError:  # importing crawlrag must not fail because a service account has no home
        uid = getattr(os, "getuid", lambda: 0)()
        return os.path.join(tempfile.gettempdir(), f"crawlrag-cache-{uid}")
    return preferred
