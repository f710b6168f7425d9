"""`crawlrag crawl ...` or `crawlrag serve ...` as a process the crash tests can kill -9.

The commands are crawlrag's own (the typer app of crawlrag.cli); only the embedding model is replaced by the
tests' hash embedder, because loading sentence-transformers takes about 20 seconds on a small machine and has
nothing to do with what a crash may break. The crash tests also run the installed `crawlrag` binary with the
real model when CRAWLRAG_SLOW_TESTS=1.

    python tests/security/crash_worker.py crawl URL [options]
    python tests/security/crash_worker.py serve --transport http --port PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from security_helpers import HashEmbedder

import crawlrag.context


def main() -> None:
    crawlrag.context.build_embedder = lambda settings: HashEmbedder()
    from crawlrag.cli import app

    app()


if __name__ == "__main__":
    main()
