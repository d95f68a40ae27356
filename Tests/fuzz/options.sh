# The libFuzzer options of each target, shared by `make fuzz` (Tests/fuzz/fuzz.mk) and run_long.sh.
# Sourced by sh/bash: fuzz_options TARGET prints them.
#
# -max_len bounds an input; -malloc_limit_mb bounds the largest single allocation the parsers may
# make for such an input (the bounds of Tests/fuzz/README.md, with room to spare); -rss_limit_mb
# catches growth across calls; -timeout (seconds per input) catches hangs.
fuzz_options() {
    case "$1" in
        model) echo "-max_len=16384 -malloc_limit_mb=64" ;;
        idx)   echo "-max_len=8192 -malloc_limit_mb=64" ;;
        csv)   echo "-max_len=16384 -malloc_limit_mb=64" ;;
        onnx)  echo "-max_len=16384 -malloc_limit_mb=64" ;;
        *)     echo "fuzz_options: unknown target $1" >&2; return 1 ;;
    esac
    echo "-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -detect_leaks=1 -dict=Tests/fuzz/$1.dict"
}
fuzz_env="ASAN_OPTIONS=detect_leaks=1:handle_abort=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
