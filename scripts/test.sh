#!/usr/bin/env bash
# Install everything (Chromium for the browser tests included), build MinIO from source (cached
# after the first run) and run the whole test suite against real servers on 127.0.0.1.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
scripts/chromium.sh
.venv/bin/python -m scripts.minio build >/dev/null
exec .venv/bin/python -m pytest "$@"
