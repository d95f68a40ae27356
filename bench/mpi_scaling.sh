#!/usr/bin/env bash
# Measures data-parallel training on this machine, for docs/DISTRIBUTED.md's "Measured here": the same
# Fashion-MNIST run as 1 process x 1 thread, 1 process x 2 threads, and 2 MPI ranks x 1 thread
# (replicated and sharded), with examples/mpi_train.c, and prints a Markdown table.
#
#   bench/mpi_scaling.sh [EPOCHS]          (default 3; run on an otherwise idle machine)
#
# Environment: DATA (Fashion-MNIST, default /usr/share/datasets/fashion-mnist), NETWORKS (hidden layer
# lists, default "128 512,256"), BATCHES (global batch sizes, default "256 64"), MPI_TRAIN_ARGS (more
# mpi_train options; "--limit 3000" makes a quick check that the script runs, not a measurement).
# The library's thread count comes from NUDGE_NUM_THREADS (default: one per online processor),
# passed to every rank with mpirun -x. Each configuration runs once; the table gives the median
# epoch time of that run (epoch 1 included: it holds the one-off input checks), the time rank 0
# spent in the allreduce callback, and the test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-3}"
data="${DATA:-/usr/share/datasets/fashion-mnist}"
networks="${NETWORKS:-128 512,256}"
batches="${BATCHES:-256 64}"
out=.build/mpi/scaling
mkdir -p "$out"
make -s lib deps-mpi >/dev/null
make -s .build/mpi/mpi_train >/dev/null

# One run: prints "median_epoch_seconds allreduce_seconds accuracy" from mpi_train's output.
run() {
  local threads="$1" ranks="$2" log="$3"; shift 3
  NUDGE_NUM_THREADS="$threads" MPI_TIMEOUT=1800 .ci/mpirun.sh -x NUDGE_NUM_THREADS -n "$ranks" \
    .build/mpi/mpi_train --data "$data" --epochs "$epochs" "$@" >"$log" 2>&1 || {
    echo "mpi_scaling: run failed, see $log" >&2; tail -5 "$log" >&2; exit 1; }
  python3 - "$log" <<'EOF'
import re, statistics, sys
text = open(sys.argv[1]).read()
epochs = [float(s) for s in re.findall(r"^epoch .*\|\s+([0-9.]+) s$", text, re.M)]
reduce = re.search(r"^allreduce: \d+ calls, ([0-9.]+) s", text, re.M)
accuracy = re.search(r"^test accuracy ([0-9.]+)%", text, re.M)
print(f"{statistics.median(epochs):.3f} {float(reduce.group(1)) / len(epochs):.3f} {accuracy.group(1)}")
EOF
}

echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) processors ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $epochs epochs per run, $(mpirun --version | head -1)"
echo
echo "| network | global batch | processes x threads | data | s per epoch | allreduce s per epoch | speed-up vs 1 x 1 | test accuracy |"
echo "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"
for hidden in $networks; do
  for batch in $batches; do
    base=""
    for config in "1 1 replicated" "2 1 replicated" "1 2 replicated" "1 2 sharded"; do
      read -r threads ranks layout <<<"$config"
      # shellcheck disable=SC2206  # a list of options, split on spaces on purpose
      flags=(--hidden "$hidden" --batch-size "$batch" ${MPI_TRAIN_ARGS:-})
      [ "$layout" = sharded ] && flags+=(--sharded)
      result=$(run "$threads" "$ranks" "$out/$hidden-$batch-$ranks-$threads-$layout.log" "${flags[@]}")
      read -r seconds reduce accuracy <<<"$result"
      [ -z "$base" ] && base="$seconds"
      speedup=$(python3 -c "print(f'{$base / $seconds:.2f}x')")
      echo "| 784-${hidden//,/-}-10 | $batch | $ranks x $threads | $layout | $seconds | $reduce | $speedup | $accuracy% |"
    done
  done
done
