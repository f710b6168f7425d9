#!/usr/bin/env bash
# Set up everything the test suite needs (venv, chromium, PostgreSQL + pgvector) and run lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
eval "$(.ci/postgres.sh)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest -p no:cacheprovider --cov=crawlrag --cov-report=term "$@"
echo "== coverage of crawlrag.rerank (at least 90%)" >&2
.venv/bin/coverage report --include='*/crawlrag/rerank/*' --fail-under=90 | tail -1
