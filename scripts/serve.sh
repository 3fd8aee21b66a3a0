#!/usr/bin/env bash
# Install the project and start the server on the embedded default (a local ./data directory).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/lakehouse serve "$@"
