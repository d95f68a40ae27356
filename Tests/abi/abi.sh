#!/usr/bin/env bash
# The ABI check (Tests/abi/README.md): the C ABI that include/nudge.h declares and libnudge.so
# exports, described by libabigail, against the committed baseline Tests/abi/libnudge.abi.
#
# Usage, from the repository root (make abi-check, make abi-baseline):
#   Tests/abi/abi.sh check [LIB]      exit 1 if a program linked against the baseline could break
#   Tests/abi/abi.sh baseline [LIB]   rewrite the baseline; refused while the ABI is incompatible
#                                     with it under the same ABI version (ABI_FORCE=1 overrides)
# Environment: NUDGE_HEADER, the nudge-header tool (default .build/release/nudge-header);
# ABI_CC, the C compiler of the stubs (default gcc: the baseline must not depend on who ran it).
set -euo pipefail

MODE=${1:-}
LIB=${2:-.build/release/libnudge.so}
TOOL=${NUDGE_HEADER:-.build/release/nudge-header}
CC_ABI=${ABI_CC:-gcc}
BASELINE=Tests/abi/libnudge.abi
WORK=.build/abi
ROOT=$(pwd)

fail() {
    echo "abi-check: FAIL: $*" >&2
    exit 1
}

case "$MODE" in check | baseline) ;; *) echo "usage: $0 check|baseline [path/to/libnudge.so]" >&2; exit 2 ;; esac
for tool in abidw abidiff nm python3 "$CC_ABI"; do
    command -v "$tool" >/dev/null ||
        { echo "abi-check: $tool not found (abidw and abidiff come with abigail-tools: .ci/ensure-deps.sh test)" >&2; exit 2; }
done
[ -x "$TOOL" ] || { echo "abi-check: $TOOL not found: swift build -c release --product nudge-header" >&2; exit 2; }
[ -f "$LIB" ] || { echo "abi-check: $LIB not found: make lib" >&2; exit 2; }
rm -rf "$WORK"
mkdir -p "$WORK"

# --- The current ABI -----------------------------------------------------------------------

# The soname follows the ABI version: libnudge.so.ABI (docs/INSTALL.md, bindings/c/install.mk).
abi=$(sed -n 's/^#define NUDGE_ABI_VERSION \([0-9][0-9]*\)$/\1/p' include/nudge.h)
[ -n "$abi" ] || fail "no NUDGE_ABI_VERSION in include/nudge.h"
soname=libnudge.so.$abi

# The functions: those the header declares that the library exports. A declared function the
# library lacks is left out, so that against the baseline it shows as removed; an exported symbol
# the header does not declare has no C type to check, so it stops the check.
"$TOOL" --list-functions Sources/NudgeABI | sort >"$WORK/declared"
nm -D --defined-only "$LIB" | awk '$2 ~ /^[A-Z]$/ { sub(/@.*/, "", $3); print $3 }' | sort >"$WORK/exported"
undeclared=$(comm -13 "$WORK/declared" "$WORK/exported")
[ -z "$undeclared" ] ||
    fail "$LIB exports symbols that include/nudge.h does not declare (make test-header says more):" $undeclared
comm -12 "$WORK/declared" "$WORK/exported" >"$WORK/functions"
missing=$(comm -23 "$WORK/declared" "$WORK/exported")
[ -z "$missing" ] || echo "abi-check: declared in include/nudge.h but not exported by $LIB:" $missing

# The types: every function of the header defined with an empty body (nudge-header --c-stubs),
# compiled with debug info into a library with the same soname that exports only those functions.
# The stubs include the header, so a stub that disagrees with it does not compile, and one that
# the header does not declare (a stale header: make header) trips -Werror=missing-prototypes.
"$TOOL" --c-stubs Sources/NudgeABI >"$WORK/stubs.c"
{ echo "{ global:"; sed 's/$/;/' "$WORK/functions"; echo "local: *; };"; } >"$WORK/exports.map"
(cd "$WORK" && "$CC_ABI" -std=c99 -O0 -g -fPIC -shared -Wall -Werror=missing-prototypes \
    -I"$ROOT/include" -fdebug-prefix-map="$ROOT"=. stubs.c -o "$soname" \
    -Wl,-soname,"$soname" -Wl,--version-script=exports.map) ||
    fail "the stubs generated from Sources/NudgeABI do not compile against include/nudge.h (make header?)"

# Deterministic: no paths of this machine, no source lines (a comment moved in the header is no
# change), type ids from the types themselves rather than from their order.
abidw --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
    "$WORK/$soname" >"$WORK/abi.raw"
described=$(grep -c "<function-decl name='nudge_" "$WORK/abi.raw" || true)
[ "$described" -eq "$(wc -l <"$WORK/functions")" ] ||
    fail "abidw describes $described functions of $(wc -l <"$WORK/functions"): is the stubs' debug info missing?"
sed "1a\\  <!-- The C ABI of $soname, written by 'make abi-baseline' (Tests/abi/README.md); do not edit. -->" \
    "$WORK/abi.raw" >"$WORK/libnudge.abi"

# --- Against the baseline -------------------------------------------------------------------

# compare: 0 if every program linked against the baseline still works with the current ABI, else
# 1 with abidiff's report in $WORK/report. Added functions are no break (--no-added-syms), nor are
# fields appended to a struct_size struct (old_callers.py).
compare() {
    python3 Tests/abi/old_callers.py "$BASELINE" "$WORK/libnudge.abi" "$WORK/as-seen-by-old-callers.abi" \
        >"$WORK/appended"
    local status=0
    abidiff --no-added-syms "$BASELINE" "$WORK/as-seen-by-old-callers.abi" >"$WORK/report" 2>&1 || status=$?
    # abidiff's status is a bit set: 1 error, 2 usage, 4 ABI change, 8 incompatible change.
    if [ $((status & 3)) -ne 0 ]; then
        cat "$WORK/report" >&2
        fail "abidiff could not compare (status $status)"
    fi
    [ "$status" -eq 0 ]
}

baseline_soname() {
    sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$BASELINE"
}

if [ "$MODE" = baseline ]; then
    if [ -f "$BASELINE" ] && [ "$(baseline_soname)" = "$soname" ] && [ "${ABI_FORCE:-0}" != 1 ] && ! compare; then
        cat "$WORK/report"
        fail "refusing to record an incompatible ABI as $soname again: programs linked against $soname
would break. Bump abiVersion (Sources/nudge-options/Version.swift, then make header) and run
make abi-baseline again (ABI_FORCE=1 re-records the same soname, for a baseline that is itself wrong)."
    fi
    cp "$WORK/libnudge.abi" "$BASELINE"
    echo "abi-check: wrote $BASELINE ($soname, $(wc -l <"$WORK/functions") functions); commit it"
    exit 0
fi

[ -f "$BASELINE" ] || fail "no baseline $BASELINE: make abi-baseline"
old_soname=$(baseline_soname)
if [ "$old_soname" != "$soname" ]; then
    fail "a deliberate break: include/nudge.h says $soname, the baseline describes $old_soname, so there
is nothing older to compare against. Record the new ABI with make abi-baseline and commit
$BASELINE with the version bump."
fi

if ! compare; then
    echo "abi-check: abidiff $BASELINE against the current ABI (as programs built against the baseline see it):"
    sed 's/^/    /' "$WORK/report"
    if [ -s "$WORK/appended" ]; then
        echo "abi-check: fields appended to struct_size structs, left out of the comparison (allowed):"
        sed 's/^/    /' "$WORK/appended"
    fi
    fail "the ABI of $soname changed incompatibly: programs already linked against it could break.
Undo the change, or make it a new ABI on purpose: in Sources/nudge-options/Version.swift bump
abiVersion, which changes the soname, and the major version (then make header), and record the
new baseline with make abi-baseline. Tests/abi/README.md has the rules."
fi

# Compatible, and maybe more than the baseline knows: say what the baseline is missing.
added=$(grep -o "<elf-symbol name='[^']*'" "$BASELINE" | cut -d"'" -f2 | sort | comm -13 - "$WORK/functions")
if [ -n "$added" ] || [ -s "$WORK/appended" ]; then
    echo "abi-check: compatible additions the baseline does not record yet (make abi-baseline records them,"
    echo "so that later changes to them are checked too):"
    for name in $added; do echo "    new function $name"; done
    sed 's/^/    /' "$WORK/appended"
fi
echo "abi-check: ok: the ABI of $soname ($(wc -l <"$WORK/functions") functions) is compatible with $BASELINE"
