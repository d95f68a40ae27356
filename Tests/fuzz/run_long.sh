#!/usr/bin/env bash
# A long fuzzing run: every target (or those named) for MINUTES minutes, all at once, each a single
# libFuzzer process at the lowest priority (nice 19), so that a shared machine stays usable.
#
#   Tests/fuzz/run_long.sh MINUTES [model] [idx] [csv] [onnx]
#
# Logs go to $FUZZ_LOG_DIR (default .build/fuzz/long): <target>.log (libFuzzer's own output),
# <target>/corpus (the grown corpus, seeded from the committed one; not committed; the regressions
# are replayed by `make fuzz` and `make test-c`),
# <target>/artifacts (crashing, leaking, hanging or out-of-memory inputs), and summary.txt with, per
# target: wall time, execs, final coverage (cov/ft), corpus size, crashes and peak RSS.
# Exits non-zero when any target found something.
set -u
cd "$(dirname "$0")/../.."
minutes=${1:?usage: Tests/fuzz/run_long.sh MINUTES [model] [idx] [csv] [onnx]}
shift
targets=${*:-model idx csv onnx}
logdir=${FUZZ_LOG_DIR:-.build/fuzz/long}
. Tests/fuzz/options.sh

make -s fuzz-build >/dev/null || { echo "make fuzz-build failed" >&2; exit 2; }
mkdir -p "$logdir"

declare -A pids started
for t in $targets; do
    mkdir -p "$logdir/$t/corpus" "$logdir/$t/artifacts" "Tests/fuzz/regressions/$t"
    started[$t]=$(date +%s)
    # shellcheck disable=SC2046,SC2086
    env $fuzz_env nice -n 19 .build/fuzz/bin/fuzz_$t $(fuzz_options $t) -max_total_time=$((minutes * 60)) \
        -artifact_prefix="$logdir/$t/artifacts/" "$logdir/$t/corpus" "Tests/fuzz/corpus/$t" \
        >"$logdir/$t.log" 2>&1 &
    pids[$t]=$!
    echo "fuzz_$t: pid ${pids[$t]}, $minutes min, log $logdir/$t.log"
done

failed=0
summary="$logdir/summary.txt"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $minutes min per target, $(nproc) processors, $(git rev-parse --short HEAD 2>/dev/null)"
    printf '%-6s %6s %5s %12s %8s %8s %12s %12s %8s %9s\n' target wall_s exit execs cov ft corpus_files corpus_bytes crashes peak_rss
} >"$summary"
for t in $targets; do
    wait "${pids[$t]}"
    rc=$?
    wall=$(($(date +%s) - started[$t]))
    log="$logdir/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | grep -E 'cov: ' | tail -1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    files=$(find "$logdir/$t/corpus" -type f | wc -l)
    bytes=$(find "$logdir/$t/corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    crashes=$(find "$logdir/$t/artifacts" -type f | wc -l)
    printf '%-6s %6s %5s %12s %8s %8s %12s %12s %8s %7sMB\n' "$t" "$wall" "$rc" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
        "$files" "$bytes" "$crashes" "${rss:-?}" >>"$summary"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        grep -E -A30 '^==[0-9]+==|invariant broken|^SUMMARY' "$log" | head -60 >>"$summary"
    fi
done
cat "$summary"
exit $failed
