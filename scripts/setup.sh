#!/usr/bin/env bash
# Create .venv and install crawlrag with pinned dependencies. Idempotent: a second run only checks.
#   scripts/setup.sh            runtime only
#   scripts/setup.sh dev        + test, lint and type-check tools, ONNX Runtime and the Postgres driver
set -euo pipefail
cd "$(dirname "$0")/.."
extras="onnx"
[[ "${1:-}" == "dev" ]] && extras="dev,onnx,postgres"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "crawlrag needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
    exit 1
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv

stamp=".venv/.crawlrag-installed-$extras"
# constraints.txt pins every package (torch to the 2.13.0 CPU build; users with GPUs install their own torch).
if [[ ! -f $stamp || pyproject.toml -nt $stamp || constraints.txt -nt $stamp ]]; then
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[$extras]" 2>&1 \
        | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -c 'import crawlrag, torch, sentence_transformers, crawl4ai, mcp' \
        || { echo "installation failed: see the pip output above" >&2; exit 1; }
    touch "$stamp"
fi

# Debian packages: the system chromium renders pages that need JavaScript; python3.11-doc is the demo corpus.
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -d /usr/share/doc/python3.11/html ]] || need+=(python3.11-doc)
if ((${#need[@]})) && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
elif ((${#need[@]})); then
    echo "note: install ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]}) for the full feature set" >&2
fi
