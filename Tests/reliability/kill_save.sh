#!/usr/bin/env bash
# Runs the kill -9 test (Tests/reliability/kill_save.c) N times (default 500), after building it:
#   Tests/reliability/kill_save.sh [N] [more kill_save options, e.g. -s SEED -m MAX_DELAY_US]
# Prints the kills, the kills that landed mid-save (their temporary files are left behind by
# design, then counted and deleted), the failures (must be 0) and the time; fails if any failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-500}"
shift || true
make -s .build/reliability/kill_save
exec .build/reliability/kill_save -n "$n" "$@"
