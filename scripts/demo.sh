#!/usr/bin/env bash
# Quick start: install crawlrag, index part of the Python 3.11 docs served from this machine, and search them.
# Needs no network, no API key and no external server: the store is one SQLite file, the model ships in a package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

docs=/usr/share/doc/python3.11/html
port=${DEMO_PORT:-8765}
if [[ ! -d $docs ]]; then
    echo "The demo corpus is the Debian package python3.11-doc; install it (apt-get install python3.11-doc)." >&2
    exit 1
fi
.venv/bin/python -m http.server "$port" --bind 127.0.0.1 --directory "$docs" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
    .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
done

export HF_HUB_OFFLINE=1 ALLOW_PRIVATE_NETWORK=true
export DATABASE_URL=${DATABASE_URL:-sqlite:///$PWD/.cache/demo.db}
echo "== crawling the Python csv docs and the pages they link to (store: $DATABASE_URL)" >&2
.venv/bin/crawlrag crawl "http://127.0.0.1:$port/library/csv.html" --max-depth 1 --max-pages 40
echo >&2
echo "== searching: read rows as dictionaries with a header" >&2
.venv/bin/crawlrag search "read rows as dictionaries with a header" --limit 3
.venv/bin/crawlrag sources
echo "Next: .venv/bin/crawlrag serve   (an MCP server over stdio; see README.md for client set-up)" >&2
