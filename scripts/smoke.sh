#!/usr/bin/env bash
# End-to-end smoke run against real MinIO and a real server; see scripts/smoke.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
exec .venv/bin/python -m scripts.smoke "$@"
