#!/usr/bin/env bash
# Checks the C header: the generator against its fixture, include/nudge.h against the Swift ABI
# sources, the header and the prologue's example against C and C++ compilers, and the header's
# functions against the symbols libnudge.so exports.
#
# Usage, from the repository root:  Tests/header/check.sh [path/to/libnudge.so]
set -euo pipefail

LIB=${1:-.build/release/libnudge.so}
FIXTURE=Tests/header/fixture
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Only the generator is built: the checks below must run even while other targets are broken.
swift build -c release --product nudge-header >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; fail "could not build nudge-header"; }
TOOL="$(swift build -c release --show-bin-path)/nudge-header"

C_COMPILERS=()
for cc in gcc clang; do command -v "$cc" >/dev/null && C_COMPILERS+=("$cc"); done
CXX_COMPILERS=()
for cxx in g++ clang++; do command -v "$cxx" >/dev/null && CXX_COMPILERS+=("$cxx"); done
[ ${#C_COMPILERS[@]} -gt 0 ] || { command -v cc >/dev/null && C_COMPILERS=(cc); } || fail "no C compiler found"
[ ${#CXX_COMPILERS[@]} -gt 0 ] || { command -v c++ >/dev/null && CXX_COMPILERS=(c++); } || fail "no C++ compiler found"

# warning_flags COMPILER: strict flags; clang also checks that @param names match the prototypes.
warning_flags() {
    echo "-Wall -Wextra -Werror -pedantic"
    case "$1" in clang*) echo "-Wdocumentation" ;; esac
}

# compile_header HEADER: a translation unit that includes HEADER twice (testing the include
# guard), as C99, C11, C++11 and C++17, with every compiler found.
compile_header() {
    local header tu="$WORK/tu.c" compiler std
    header=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    printf '#include "%s"\n#include "%s"\ntypedef int header_check_unit_is_not_empty;\n' "$header" "$header" >"$tu"
    for compiler in "${C_COMPILERS[@]}"; do
        for std in c99 c11; do
            # shellcheck disable=SC2046 # the flags are meant to split into words
            "$compiler" -std=$std $(warning_flags "$compiler") -fsyntax-only -x c "$tu" ||
                fail "$1 does not compile cleanly as $std with $compiler"
        done
    done
    for compiler in "${CXX_COMPILERS[@]}"; do
        for std in c++11 c++17; do
            # shellcheck disable=SC2046
            "$compiler" -std=$std $(warning_flags "$compiler") -fsyntax-only -x c++ "$tu" ||
                fail "$1 does not compile cleanly as $std with $compiler"
        done
    done
}

# expect_error NAME MESSAGE: the Swift source on stdin must make the generator exit with 1 and
# print MESSAGE (which names the file and line).
expect_error() {
    local dir="$WORK/errors/$1" status=0
    mkdir -p "$dir"
    cat >"$dir/bad.swift"
    "$TOOL" --list-functions "$dir" >/dev/null 2>"$dir/stderr" || status=$?
    [ "$status" -eq 1 ] || fail "error case $1: exit status $status, expected 1"
    grep -qF -- "$2" "$dir/stderr" || fail "error case $1: expected '$2', got: $(cat "$dir/stderr")"
}

# --- The generator itself, on a fixture that exercises every rule ---------------------------

"$TOOL" "$FIXTURE" "$FIXTURE/prologue.txt" "$WORK/fixture.h"
diff -u "$FIXTURE/expected.h" "$WORK/fixture.h" ||
    fail "the generator's output for $FIXTURE changed; if that is intended, review it and copy it to $FIXTURE/expected.h"
"$TOOL" "$FIXTURE" "$FIXTURE/prologue.txt" - | cmp -s - "$WORK/fixture.h" ||
    fail "the generator's output differs between two runs, or between a file and stdout"
echo "ok: generator output for the fixture matches $FIXTURE/expected.h"

compile_header "$FIXTURE/expected.h"
echo "ok: $FIXTURE/expected.h compiles cleanly as C99, C11, C++11 and C++17"

# check_layout NAME SOURCE_DIR SWIFT_FILES...: compiles the files with a main.swift that prints
# Swift's own layout in --layout's format and compares it with the generator's C layout.
check_layout() {
    local name=$1 dir=$2 out="$WORK/layout-$1"
    shift 2
    mkdir -p "$out"
    "$TOOL" --layout "$dir" >"$out/expected"
    awk '
        $2 == "size" { printf "print(\"%s size \\(MemoryLayout<%s>.stride) align \\(MemoryLayout<%s>.alignment)\")\n", $1, $1, $1 }
        $2 == "offset" {
            split($1, part, ".")
            printf "print(\"%s offset \\(MemoryLayout<%s>.offset(of: \\%s.%s)!)\")\n", $1, part[1], part[1], part[2]
        }' "$out/expected" >"$out/main.swift"
    swiftc -swift-version 6 "$@" "$out/main.swift" -o "$out/print-layout" >"$out/build.log" 2>&1 ||
        { cat "$out/build.log" >&2; fail "$name does not compile as Swift"; }
    "$out/print-layout" >"$out/actual"
    diff -u "$out/expected" "$out/actual" || fail "nudge-header --layout disagrees with Swift's MemoryLayout for $name"
}
check_layout fixture "$FIXTURE" "$FIXTURE"/*.swift
echo "ok: fixture struct layouts match Swift's MemoryLayout"

# A stored property with observers is a field, but MemoryLayout.offset(of:) cannot see it, so
# it is not in the fixture.
mkdir -p "$WORK/observers"
cat >"$WORK/observers/a.swift" <<'EOF'
// @c-section data
public struct s {
    public var a: Int32 = 0 {
        didSet { if a < 0 { a = 0 } }
    }
    public var b: Int64 = 0
}
EOF
"$TOOL" --layout "$WORK/observers" >"$WORK/observers/layout"
printf 's size 16 align 8\ns.a offset 0\ns.b offset 8\n' | diff -u - "$WORK/observers/layout" ||
    fail "a stored property with observers is not laid out as a field"

expect_error unknown-type "bad.swift:4: error: unknown type Bool" <<'EOF'
// @c-section errors
/// Doc.
@_cdecl("f")
public func f(_ flag: Bool) -> Int32 { 0 }
EOF
expect_error cdecl-name "bad.swift:2: error: @_cdecl(\"nudge_g\") differs from the Swift function name nudge_f" <<'EOF'
// @c-section errors
@_cdecl("nudge_g") public func nudge_f() {}
EOF
expect_error opaque-pointer "bad.swift:2: error: use a handle typealias" <<'EOF'
// @c-section errors
@_cdecl("f") public func f(_ p: OpaquePointer?) {}
EOF
expect_error optional-scalar "bad.swift:3: error: Optional int32_t has no C equivalent" <<'EOF'
// @c-section errors
public struct s {
    public var x: Int32? = nil
}
EOF
expect_error private-field "bad.swift:4: error: stored property y of struct s must be public" <<'EOF'
// @c-section errors
public struct s {
    public var x: Int32 = 0
    var y: Int32 = 0
}
EOF
expect_error tail-padding "bad.swift:8: error: field b would be at offset 9 in Swift but 16 in C" <<'EOF'
// @c-section errors
public struct inner {
    public var x: Int64 = 0
    public var y: Int8 = 0
}
public struct outer {
    public var a: inner = inner()
    public var b: Int8 = 0
}
EOF
expect_error param-doc "bad.swift:4: error: the doc comment of f documents parameter netwrok" <<'EOF'
// @c-section errors
public typealias h = OpaquePointer
/// @param[in] netwrok Misspelt.
@_cdecl("f") public func f(_ network: h?) {}
EOF
expect_error unterminated-string "bad.swift:3: error: unterminated string literal" <<'EOF'
// @c-section errors
@_cdecl("f") public func f() {
    let s = "abc
}
EOF

# Sections: each declaration has one, it is one the generator knows, its line stands alone at
# the top level, and no section uses what a later one declares.
expect_error no-section "bad.swift:3: error: f is in no header section" <<'EOF'
import Glibc

@_cdecl("f") public func f() {}
EOF
expect_error unknown-section "bad.swift:1: error: unknown header section 'networks'; the sections are errors, library" <<'EOF'
// @c-section networks
public let X: Int32 = 1
EOF
expect_error section-syntax "bad.swift:1: error: expected '// @c-section NAME', found '// @c-section data sets'" <<'EOF'
// @c-section data sets
public let X: Int32 = 1
EOF
expect_error section-in-body "bad.swift:3: error: '// @c-section' must be at the top level of a file" <<'EOF'
// @c-section data
@_cdecl("f") public func f() {
    // @c-section errors
}
EOF
expect_error section-after-code "bad.swift:1: error: '// @c-section' must be on a line of its own" <<'EOF'
public let X: Int32 = 1 // @c-section data
EOF
expect_error section-doc-comment "bad.swift:1: error: '@c-section' goes in a plain '//' comment" <<'EOF'
/// @c-section data
public let X: Int32 = 1
EOF
expect_error section-orphans-doc "bad.swift:3: error: the doc comment above '// @c-section' documents nothing" <<'EOF'
// @c-section errors
/// Meant for X.
// @c-section data
public let X: Int32 = 1
EOF
expect_error section-splits-declaration "bad.swift:3: error: '// @c-section' cannot split a declaration" <<'EOF'
// @c-section data
@_cdecl("f")
// @c-section errors
public func f() {}
EOF
# The error is reported at the typedef, which is what has to move.
expect_error later-section "bad.swift:5: error: t is in section train, but f (" <<'EOF'
// @c-section network
@_cdecl("f") public func f(_ value: t) {}

// @c-section train
public typealias t = Int32
EOF
echo "ok: the generator rejects invalid ABI sources with file:line errors"

# --- include/nudge.h ------------------------------------------------------------------------

[ -f include/nudge.h ] || fail "include/nudge.h is missing: run make header"
"$TOOL" Sources/NudgeABI include/nudge-prologue.txt "$WORK/nudge.h" ||
    fail "nudge-header rejects Sources/NudgeABI (see the error above)"
diff -u include/nudge.h "$WORK/nudge.h" >"$WORK/stale.diff" ||
    { cat "$WORK/stale.diff"; fail "include/nudge.h is stale: run make header"; }
echo "ok: header is up to date"

compile_header include/nudge.h
echo "ok: include/nudge.h compiles cleanly as C99, C11, C++11 and C++17"

# The ABI structs are declared in Swift and read by C: both must agree on every offset. The files
# that declare them also hold code that needs the core, so the structs, and the typealiases their
# fields use, are copied out (each from its `public` line to the line where its brackets close)
# and compiled on their own.
awk '
    /^public (struct|typealias) / { copying = 1; depth = 0 }
    copying {
        print
        line = $0
        sub(/\/\/.*/, "", line)
        depth += gsub(/[[({]/, "", line) - gsub(/[])}]/, "", line)
        if (depth <= 0) copying = 0
    }' Sources/NudgeABI/*.swift >"$WORK/abi-types.swift"
check_layout abi Sources/NudgeABI "$WORK/abi-types.swift"
echo "ok: the ABI structs' C layout matches Swift's MemoryLayout"

# The prologue's example is code readers copy: it must compile against the header.
sed -n '/@code/,/@endcode/p' include/nudge-prologue.txt | sed '1d;$d' | sed -E 's/^ \*( |$)//' >"$WORK/example.c"
[ -s "$WORK/example.c" ] || fail "no @code example found in include/nudge-prologue.txt"
for compiler in "${C_COMPILERS[@]}"; do
    # shellcheck disable=SC2046
    "$compiler" -std=c99 $(warning_flags "$compiler") -fsyntax-only -I include "$WORK/example.c" ||
        fail "the example in include/nudge-prologue.txt does not compile cleanly with $compiler"
done
echo "ok: the prologue's example compiles against include/nudge.h"

# --- libnudge.so ----------------------------------------------------------------------------

[ -f "$LIB" ] || fail "$LIB not found: build it first (swift build -c release --product nudge)"
"$TOOL" --list-functions Sources/NudgeABI | sort >"$WORK/declared"
nm -D --defined-only "$LIB" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$WORK/exported"
if ! cmp -s "$WORK/declared" "$WORK/exported"; then
    echo "declared in include/nudge.h but not exported by $LIB:"
    comm -23 "$WORK/declared" "$WORK/exported" | sed 's/^/    /'
    echo "exported by $LIB but not declared in include/nudge.h:"
    comm -13 "$WORK/declared" "$WORK/exported" | sed 's/^/    /'
    fail "the header's functions and the library's exported symbols differ"
fi
echo "ok: the header declares exactly the $(wc -l <"$WORK/declared") functions $LIB exports"
