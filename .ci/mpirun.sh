#!/usr/bin/env bash
# mpirun as the project runs it (make mpi-demo, make test-mpi, bench/mpi_scaling.sh), always bounded
# in time. Open MPI 4.1 (Debian 12's openmpi-bin); docs/DISTRIBUTED.md explains each flag.
#
#   .ci/mpirun.sh [-t SECONDS] -n RANKS PROGRAM [ARGS...]     (any other mpirun options may follow -t)
#
#   -t SECONDS   the whole run is stopped after this long (default $MPI_TIMEOUT, else 60): timeout
#                sends SIGTERM to mpirun, which ends every rank, and SIGKILL 10 s later if it is still
#                running. The exit status is then 124 (timeout's), and a line on stderr says so.
#   MPIRUN_FLAGS extra mpirun options, word-split (e.g. "--mca btl self,tcp" or "--hostfile hosts").
#
# Flags always given:
#   --oversubscribe     allows more ranks than cores (the tests run 3 ranks on 2 cores); harmless
#                       otherwise, since each rank is then not bound to a core anyway.
#   --bind-to none      Open MPI binds each rank to one core when ranks <= cores; the library runs its
#                       own worker threads (NUDGE_NUM_THREADS, default one per online processor), which
#                       a binding would squeeze onto that one core.
#   --allow-run-as-root when run as root (containers, CI); Open MPI refuses root without it.
set -euo pipefail

seconds="${MPI_TIMEOUT:-60}"
if [ "${1:-}" = "-t" ]; then
  [ $# -ge 2 ] || { echo "mpirun.sh: -t needs a number of seconds" >&2; exit 2; }
  seconds="$2"
  shift 2
fi
case "$seconds" in
  ''|*[!0-9]*) echo "mpirun.sh: timeout '$seconds' is not a whole number of seconds" >&2; exit 2 ;;
esac
[ $# -ge 1 ] || { echo "usage: .ci/mpirun.sh [-t SECONDS] -n RANKS PROGRAM [ARGS...]" >&2; exit 2; }
command -v mpirun >/dev/null || {
  echo "mpirun.sh: mpirun not found; install Open MPI with .ci/ensure-deps.sh mpi" >&2
  exit 127
}

flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
# shellcheck disable=SC2206  # MPIRUN_FLAGS is a list of options, split on spaces on purpose
[ -n "${MPIRUN_FLAGS:-}" ] && flags+=(${MPIRUN_FLAGS})

status=0
start=$SECONDS
timeout -k 10 "$seconds" mpirun "${flags[@]}" "$@" || status=$?
# 124: timeout's SIGTERM ended it; 137 after the limit: its SIGKILL did (137 before the limit is a
# rank killed by signal 9, which mpirun passes on).
if [ "$status" -eq 124 ] || { [ "$status" -eq 137 ] && [ $((SECONDS - start)) -ge "$seconds" ]; }; then
  echo "mpirun.sh: stopped after $seconds s (timeout): mpirun $*" >&2
fi
exit "$status"
