#!/usr/bin/env bash
# The original name of the smoke script, kept as an alias.
exec "$(dirname "$0")/smoke.sh" "$@"
