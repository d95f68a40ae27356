#!/usr/bin/env bash
# make test-install: installs Nudge into a temporary prefix and uses it as other projects do.
#
# - the installed tree: exactly the expected files, the library's soname and symlinks, no RUNPATH,
#   the header, the tool with its completions and man page, the pkg-config file;
# - Tests/install/consumer.c built three ways, each from a copy in a temporary directory, with no
#   -I, -L or rpath into the source tree:
#     a. a plain Makefile with `pkg-config --cflags --libs nudge` (PKG_CONFIG_PATH = the prefix);
#     b. a CMake project with find_package(Nudge X.Y CONFIG REQUIRED) and Nudge::nudge, against a
#        moved copy of the prefix (the CMake files are relocatable), and the version requests that
#        NudgeConfigVersion.cmake accepts and refuses;
#     c. `cc -I$prefix/include consumer.c -L$prefix/lib -lnudge`, no rpath, run through the loader's
#        cache: an /etc/ld.so.conf.d snippet for the prefix and ldconfig, removed again at the end
#        (needs root; skipped otherwise);
# - reinstalling, upgrading over an older version's files, make uninstall (the prefix as it was
#   before), DESTDIR, and failures that must leave nothing behind (an unwritable prefix, a file in
#   the way, a full file system).
#
# Run from the Makefile (MAKE is the make that runs it), after the files make install copies are built.
# (With pipefail, `producer | grep -q` fails when grep exits before the producer has written all:
# the pipelines here let grep read to the end.)
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
MAKE=${MAKE:-make}

work=$(mktemp -d "${TMPDIR:-/tmp}/nudge-test-install.XXXXXX")
prefix=$work/prefix
snippet=""
mounted=""
cleanup() {
    if [ -n "$snippet" ]; then
        rm -f "$snippet"
        ldconfig
    fi
    [ -z "$mounted" ] || umount "$mounted"
    rm -rf "$work"
}
trap cleanup EXIT

# Nothing in the environment may point a compiler, pkg-config, CMake or the loader into the tree.
unset LD_LIBRARY_PATH LD_RUN_PATH CPATH C_INCLUDE_PATH LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH

passed=0 failed=0 skipped=0
pass() {
    echo "ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
skip() {
    echo "skip: $*"
    skipped=$((skipped + 1))
}
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds; its output is shown when it fails.
check() {
    local what=$1 log
    shift
    log=$(mktemp "$work/log.XXXXXX")
    if "$@" >"$log" 2>&1; then pass "$what"; else
        fail "$what"
        sed 's/^/    /' "$log"
    fi
}
# untouched_by_tree FILE...: none of the files (build logs, binaries) names the source tree.
untouched_by_tree() {
    local file
    for file; do [ -f "$file" ] || { echo "$file is missing"; return 1; }; done
    ! grep -l -F "$repo" "$@"
}
# nmake ARGS...: the project's make, quietly (its output goes to the caller's log).
nmake() {
    "$MAKE" --no-print-directory "$@"
}

header_define() { sed -n "s/^#define NUDGE_$1 \([0-9][0-9]*\)\$/\1/p" include/nudge.h; }
MAJOR=$(header_define VERSION_MAJOR)
MINOR=$(header_define VERSION_MINOR)
PATCH=$(header_define VERSION_PATCH)
ABI=$(header_define ABI_VERSION)
VERSION=$MAJOR.$MINOR.$PATCH
SONAME=libnudge.so.$ABI
REALNAME=$SONAME.$VERSION
echo "== Nudge $VERSION, ABI $ABI: $REALNAME, soname $SONAME; temporary prefix $prefix"

# dynamic FILE TAG: the values of the ELF dynamic entries TAG (NEEDED, SONAME, RUNPATH, RPATH).
dynamic() {
    readelf -d "$1" | sed -n "s/.*($2).*\[\(.*\)\]\$/\1/p"
}

# ---------------------------------------------------------------------------------------------
echo "== make install"

# A file of another package's under the prefix: make uninstall must leave it, and its directories.
mkdir -p "$prefix/share/doc/other"
echo "not Nudge's" >"$prefix/share/doc/other/README"
before=$(cd "$prefix" && find . | sort)

check "make install PREFIX=$prefix" nmake install PREFIX="$prefix"

expected_files() {
    printf '%s\n' ./bin/nudge ./include/nudge.h "./lib/$REALNAME" "./lib/$SONAME" ./lib/libnudge.so \
        ./lib/pkgconfig/nudge.pc ./lib/cmake/Nudge/NudgeConfig.cmake ./lib/cmake/Nudge/NudgeConfigVersion.cmake \
        ./share/bash-completion/completions/nudge ./share/zsh/site-functions/_nudge ./share/man/man1/nudge.1 \
        ./share/nudge/install-manifest.txt ./share/doc/other/README | sort
}
check "the prefix holds exactly the expected files" \
    diff -u <(expected_files) <(cd "$prefix" && find . -type f -o -type l | sort)
check "$SONAME and libnudge.so link to $REALNAME" \
    test "$(readlink "$prefix/lib/$SONAME")" = "$REALNAME" -a "$(readlink "$prefix/lib/libnudge.so")" = "$REALNAME"
soname=$(dynamic "$prefix/lib/$REALNAME" SONAME)
echo "   readelf -d: $(readelf -d "$prefix/lib/$REALNAME" | grep SONAME | sed 's/^ *//')"
check "the installed library's SONAME is $SONAME" test "$soname" = "$SONAME"
check "the installed library has no RUNPATH or RPATH" \
    test -z "$(dynamic "$prefix/lib/$REALNAME" RUNPATH)$(dynamic "$prefix/lib/$REALNAME" RPATH)"
check "the installed library exports the same functions as the built one" \
    diff <(nm -D --defined-only "$prefix/lib/$REALNAME" | awk '{ print $3 }' | sort) \
    <(nm -D --defined-only .build/release/libnudge.so | awk '{ print $3 }' | sort)
check "the installed header is include/nudge.h" cmp include/nudge.h "$prefix/include/nudge.h"
check "the installed tool reports Nudge $VERSION" \
    test "$("$prefix/bin/nudge" --version 2>&1)" = "$VERSION" -o "$("$prefix/bin/nudge" --version 2>&1)" = "nudge $VERSION"
check "the bash completion defines completion for nudge" \
    bash -c "source '$prefix/share/bash-completion/completions/nudge' && complete -p nudge"
check "the zsh completion is a #compdef nudge function" grep -qx '#compdef nudge' "$prefix/share/zsh/site-functions/_nudge"
check "the man page is NUDGE(1)" grep -qx '.Dt NUDGE 1' "$prefix/share/man/man1/nudge.1"
if command -v man >/dev/null; then
    man_renders() {
        local out
        out=$(MANWIDTH=80 man --warnings -l "$prefix/share/man/man1/nudge.1" 2>&1 >/dev/null) || return 1
        [ -z "$out" ] || { echo "$out"; return 1; }
        MANWIDTH=80 man -l "$prefix/share/man/man1/nudge.1" 2>/dev/null | grep 'nudge train' >/dev/null
    }
    check "man renders the page without warnings" man_renders
else
    skip "man is not installed: the page is not rendered"
fi

# ---------------------------------------------------------------------------------------------
echo "== a. a Makefile with pkg-config"

export_pc() { PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config "$@"; }
echo "   pkg-config --cflags --libs nudge: $(export_pc --cflags --libs nudge)"
check "pkg-config --modversion nudge is $VERSION" test "$(export_pc --modversion nudge)" = "$VERSION"
check "pkg-config --static adds OpenBLAS and zlib" \
    test "$(export_pc --static --libs nudge | tr -s ' ' | sed 's/ $//')" = "-L$prefix/lib -lnudge -lopenblas -lz"
mkdir -p "$work/a"
cp Tests/install/consumer.c Tests/install/pkgconfig/Makefile "$work/a/"
check "make builds the consumer with pkg-config's flags" \
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
    make --no-print-directory -C "$work/a" consumer
check "the consumer runs (pkg-config build)" "$work/a/consumer"
check "the consumer records NEEDED $SONAME" test "$(dynamic "$work/a/consumer" NEEDED | grep nudge)" = "$SONAME"
check "nothing in the pkg-config build names the source tree" untouched_by_tree "$work/a/consumer"

# ---------------------------------------------------------------------------------------------
echo "== b. a CMake project with find_package(Nudge $MAJOR.$MINOR CONFIG REQUIRED), against a moved prefix"

# The CMake files compute every path from their own location: a copy elsewhere must work as it is.
moved=$work/moved
cp -a "$prefix" "$moved"
mkdir -p "$work/b"
cp Tests/install/consumer.c Tests/install/cmake/CMakeLists.txt "$work/b/"
cmake_log=$work/b-cmake.log
cmake_consumer() {
    cmake -S "$work/b" -B "$work/b/build" -DCMAKE_PREFIX_PATH="$moved" -DNUDGE_REQUEST="$MAJOR.$MINOR" &&
        cmake --build "$work/b/build" --verbose
}
if cmake_consumer >"$cmake_log" 2>&1; then
    pass "cmake configures and builds the consumer with Nudge::nudge"
else
    fail "cmake configures and builds the consumer with Nudge::nudge"
    sed 's/^/    /' "$cmake_log"
fi
grep -E '^-- (Nudge|Configuring done|Generating done|Build files)|Linking C executable|Built target' "$cmake_log" |
    sed 's/^/   /'
check "the consumer runs (CMake build)" "$work/b/build/consumer"
used_moved_copy() {
    ! grep -F "$prefix/" "$cmake_log" && dynamic "$work/b/build/consumer" RUNPATH | grep -F "$moved/lib" >/dev/null
}
check "CMake used the moved copy, not the prefix it was installed to" used_moved_copy
check "the CMake consumer records NEEDED $SONAME" \
    test "$(dynamic "$work/b/build/consumer" NEEDED | grep nudge)" = "$SONAME"
check "nothing in the CMake build names the source tree" untouched_by_tree "$cmake_log" "$work/b/build/consumer"
rm -rf "$moved"

# request EXPECTED REQUEST: find_package(Nudge REQUEST CONFIG) finds the installation or not.
mkdir -p "$work/v"
cp Tests/install/cmake-version/CMakeLists.txt "$work/v/"
request() {
    local want=$1 req=$2 dir out
    dir=$(mktemp -d "$work/v/build.XXXXXX")
    out=$(cmake -S "$work/v" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" -DNUDGE_REQUEST="$req" 2>&1)
    grep -x -- "-- nudge-request: $req .*" <<<"$out"
    grep -qx -- "-- nudge-request: $req $want" <<<"$out"
}
check "find_package(Nudge) with no version finds it" request found ""
check "find_package(Nudge $MAJOR.$MINOR) finds it" request found "$MAJOR.$MINOR"
check "find_package(Nudge $VERSION EXACT) finds it" request found "$VERSION EXACT"
[ "$MINOR" -eq 0 ] || check "find_package(Nudge $MAJOR.$((MINOR - 1))) finds it (same major, newer minor)" \
    request found "$MAJOR.$((MINOR - 1))"
check "find_package(Nudge $MAJOR.$MINOR...<$((MAJOR + 1)).0) finds it" request found "$MAJOR.$MINOR...<$((MAJOR + 1)).0"
check "find_package(Nudge $MAJOR.$MINOR.$((PATCH + 1))) refuses it (older)" request not-found "$MAJOR.$MINOR.$((PATCH + 1))"
check "find_package(Nudge $MAJOR.$((MINOR + 1))) refuses it (older)" request not-found "$MAJOR.$((MINOR + 1))"
check "find_package(Nudge $((MAJOR + 1)).0) refuses it (another major)" request not-found "$((MAJOR + 1)).0"
check "find_package(Nudge $MAJOR.$((MINOR + 1))...<$((MAJOR + 2)).0) refuses it" \
    request not-found "$MAJOR.$((MINOR + 1))...<$((MAJOR + 2)).0"
[ "$MAJOR" -eq 0 ] || check "find_package(Nudge $((MAJOR - 1)).0) refuses it (another major)" \
    request not-found "$((MAJOR - 1)).0"

# ---------------------------------------------------------------------------------------------
echo "== c. cc -lnudge, no rpath, through the loader's cache (ldconfig)"

if [ "$(id -u)" -ne 0 ]; then
    skip "c. needs root to add $prefix/lib to /etc/ld.so.conf.d and run ldconfig"
elif [ ! -d /etc/ld.so.conf.d ] || ! grep -qs 'ld.so.conf.d' /etc/ld.so.conf; then
    skip "c. /etc/ld.so.conf does not include /etc/ld.so.conf.d"
else
    snippet=/etc/ld.so.conf.d/zz-nudge-test-install-$$.conf
    echo "$prefix/lib" >"$snippet"
    check "ldconfig with $prefix/lib in /etc/ld.so.conf.d" ldconfig
    check "the loader's cache lists $SONAME in $prefix/lib" \
        bash -c "ldconfig -p | grep -F '$SONAME ' | grep -qF '=> $prefix/lib/$SONAME'"
    mkdir -p "$work/c"
    cp Tests/install/consumer.c "$work/c/"
    check "cc -I\$prefix/include consumer.c -L\$prefix/lib -lnudge" \
        cc -std=c99 -Wall -Wextra -Werror -I"$prefix/include" "$work/c/consumer.c" -L"$prefix/lib" -lnudge \
        -o "$work/c/consumer"
    echo "   readelf -d consumer: $(readelf -d "$work/c/consumer" | grep 'NEEDED.*nudge' | sed 's/^ *//')"
    check "the consumer records NEEDED $SONAME" test "$(dynamic "$work/c/consumer" NEEDED | grep nudge)" = "$SONAME"
    check "the consumer has no RUNPATH or RPATH" \
        test -z "$(dynamic "$work/c/consumer" RUNPATH)$(dynamic "$work/c/consumer" RPATH)"
    check "the consumer runs, finding $SONAME through the cache" "$work/c/consumer"
    check "ldd resolves $SONAME to $prefix/lib" bash -c "ldd '$work/c/consumer' | grep -qF '$SONAME => $prefix/lib/$SONAME'"
    rm -f "$snippet"
    snippet=""
    check "ldconfig without the snippet forgets $prefix/lib" \
        bash -c "ldconfig && ! ldconfig -p | grep -qF '$prefix/lib/'"
fi

# ---------------------------------------------------------------------------------------------
echo "== reinstalling, upgrading, uninstalling"

manifest=$prefix/share/nudge/install-manifest.txt
first_dirs=$(grep '^dir ' "$manifest")
check "make install again over the same prefix" nmake install PREFIX="$prefix"
check "the manifest still lists the directories the first install created" \
    test "$(grep '^dir ' "$manifest")" = "$first_dirs"
# An earlier version's library, as its install recorded it: the new install removes it.
old=$prefix/lib/$SONAME.0.0.0
echo "an earlier version" >"$old"
echo "file $old" >>"$manifest"
check "make install over an earlier version" nmake install PREFIX="$prefix"
check "the earlier version's library is gone" test ! -e "$old"
check "the prefix again holds exactly the expected files" \
    diff -u <(expected_files) <(cd "$prefix" && find . -type f -o -type l | sort)

check "make uninstall PREFIX=$prefix" nmake uninstall PREFIX="$prefix"
check "the prefix is as it was before make install" diff -u <(echo "$before") <(cd "$prefix" && find . | sort)
uninstall_again() {
    nmake uninstall PREFIX="$prefix" 2>&1 | grep 'no Nudge installation is recorded' >/dev/null
}
check "make uninstall again says nothing is installed, and succeeds" uninstall_again

# DESTDIR: the files land under it, and name the final prefix only.
dest=$work/dest
check "make install DESTDIR=$dest PREFIX=/opt/pkg" nmake install DESTDIR="$dest" PREFIX=/opt/pkg
check "DESTDIR: the library is under DESTDIR/opt/pkg/lib" test -f "$dest/opt/pkg/lib/$REALNAME"
check "DESTDIR: nudge.pc names prefix=/opt/pkg" grep -qx 'prefix=/opt/pkg' "$dest/opt/pkg/lib/pkgconfig/nudge.pc"
check "DESTDIR: no installed file names DESTDIR" bash -c "! grep -rlF '$dest' '$dest/opt/pkg'"
check "DESTDIR: the manifest records no directory but Nudge's own" \
    test "$(grep '^dir ' "$dest/opt/pkg/share/nudge/install-manifest.txt" 2>/dev/null | sort)" = \
    "$(printf 'dir %s\n' /opt/pkg/lib/cmake/Nudge /opt/pkg/share/nudge | sort)"
check "make uninstall DESTDIR=$dest PREFIX=/opt/pkg" nmake uninstall DESTDIR="$dest" PREFIX=/opt/pkg
check "DESTDIR: no file is left under DESTDIR, nor Nudge's directories" \
    test -z "$(find "$dest" -type f -o -type l -o -name Nudge -o -name nudge)"

# ---------------------------------------------------------------------------------------------
echo "== installs that must fail and leave nothing behind"

# fails_cleanly DESCRIPTION DIRECTORY EXPECTED-LISTING MESSAGE MAKE-ARGS...: make install fails,
# says MESSAGE, and DIRECTORY then lists exactly EXPECTED-LISTING (find . | sort, or "absent").
fails_cleanly() {
    local dir=$1 listing=$2 message=$3 out
    shift 3
    if out=$(nmake install "$@" 2>&1); then
        echo "make install $* succeeded"
        return 1
    fi
    grep -F -- "$message" <<<"$out" >/dev/null || { echo "$out"; echo "(no '$message')"; return 1; }
    if [ "$listing" = absent ]; then
        [ ! -e "$dir" ] || { echo "$dir exists"; return 1; }
    else
        diff -u <(echo "$listing") <(cd "$dir" && find . | sort)
    fi
}
check "make install PREFIX=/proc/forbidden fails, and creates nothing" \
    fails_cleanly /proc/forbidden absent "nothing was installed" PREFIX=/proc/forbidden
check "make install PREFIX=relative/path is refused" \
    fails_cleanly "$repo/relative" absent "must be an absolute path" PREFIX=relative/path
blocked=$work/blocked
mkdir -p "$blocked"
echo "a file where a directory goes" >"$blocked/share"
check "make install with a file in the way of a directory fails, and removes the directories it made" \
    fails_cleanly "$blocked" "$(printf '.\n./share')" "is in the way" PREFIX="$blocked"

small=$work/small
mkdir -p "$small"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4m nudge-test-install "$small" 2>/dev/null; then
    mounted=$small
    check "make install into a full file system fails, and leaves it empty" \
        fails_cleanly "$small" "." "nothing was installed" PREFIX="$small"
    umount "$small"
    mounted=""
else
    skip "the full file system case needs root and a tmpfs mount"
fi

echo "test-install: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
