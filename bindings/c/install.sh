#!/usr/bin/env bash
# `make install` and `make uninstall` (install.mk runs this with the directories in the environment).
#
#   bindings/c/install.sh install     puts the library, header, pkg-config and CMake files, the tool,
#                                    its completions and man page in place: all of them or none
#   bindings/c/install.sh uninstall   removes what the recorded install put there, and nothing else
#
# Environment: DESTDIR, PREFIX, EXEC_PREFIX, BINDIR, LIBDIR, INCLUDEDIR, DATAROOTDIR, MANDIR,
# PKGCONFIGDIR, CMAKEDIR, BASHCOMPDIR, ZSHCOMPDIR (absolute paths; DESTDIR is prepended to each
# when writing, never recorded in the files); for install also the built files NUDGE_LIB,
# NUDGE_CLI, NUDGE_HEADER, NUDGE_MAN, NUDGE_BASH, NUDGE_ZSH.
#
# All or nothing: every file is first written in full under a temporary name beside its final one
# (so a directory that cannot be created or written, or a full disk, stops the install before any
# final name changes), and only then renamed into place; if a rename fails, the renamed ones are
# put back as they were (a replaced file from an earlier install is kept aside until the end).
#
# The manifest, $DATAROOTDIR/nudge/install-manifest.txt, lists each file and symlink the install
# put there and each directory it had to create. `make uninstall` removes exactly those, a
# directory only once it is empty again; a new install over an older one removes the older one's
# files that it does not replace (an earlier version's libnudge.so.A.X.Y.Z).
set -euo pipefail

action=${1:-}
case "$action" in
    install | uninstall) ;;
    *) echo "usage: $0 install|uninstall (run by make install / make uninstall)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "nudge $action: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Directories

DESTDIR=${DESTDIR:-}
DIRS=(PREFIX EXEC_PREFIX BINDIR LIBDIR INCLUDEDIR DATAROOTDIR MANDIR PKGCONFIGDIR CMAKEDIR BASHCOMPDIR ZSHCOMPDIR)

# Each directory must be absolute, and hold only characters that the generated pkg-config and
# CMake files can carry unquoted. Paths are normalised without resolving symbolic links.
for name in "${DIRS[@]}"; do
    value=${!name:-}
    [ -n "$value" ] || die "$name is empty"
    case "$value" in /*) ;; *) die "$name must be an absolute path, not '$value'" ;; esac
    [[ "$value" =~ ^[A-Za-z0-9/._+,@%=:~-]+$ ]] || die "$name='$value': use letters, digits and / . _ + , @ % = : ~ - only"
    printf -v "$name" '%s' "$(realpath -m -s -- "$value")"
done
if [ -n "$DESTDIR" ]; then
    case "$DESTDIR" in /*) ;; *) DESTDIR=$(realpath -m -s -- "$DESTDIR") ;; esac
fi
MANIFEST=$DATAROOTDIR/nudge/install-manifest.txt

# below BASE PATH: PATH relative to BASE ("" for BASE itself); fails when PATH is not under BASE.
below() {
    if [ "$2" = "$1" ]; then
        echo ""
    elif [ "$1" = / ]; then
        echo "${2#/}"
    elif [ "${2#"$1"/}" != "$2" ]; then
        echo "${2#"$1"/}"
    else
        return 1
    fi
}

# from VARIABLE BASE PATH: PATH written as VARIABLE/relative when under BASE, else as it is.
from() {
    local rel
    if rel=$(below "$2" "$3"); then echo "$1${rel:+/$rel}"; else echo "$3"; fi
}

# updirs RELATIVE: "../.." for "lib/cmake", one ".." per component.
updirs() {
    local rel=$1 out=""
    while [ -n "$rel" ]; do
        out="$out/.."
        case "$rel" in */*) rel=${rel#*/} ;; *) rel="" ;; esac
    done
    echo "${out#/}"
}

# ---------------------------------------------------------------------------------------------
# Uninstall

# read_manifest FILE: sets MANIFEST_FILES and MANIFEST_DIRS (paths without DESTDIR).
read_manifest() {
    MANIFEST_FILES=()
    MANIFEST_DIRS=()
    local kind path
    while IFS=' ' read -r kind path; do
        case "$kind" in '' | '#'*) continue ;; esac
        case "$path" in
            /*) ;;
            *) die "$1: '$path' is not an absolute path: the manifest is damaged" ;;
        esac
        case "/$path/" in */../* | */./*) die "$1: '$path' is not a plain path: the manifest is damaged" ;; esac
        case "$kind" in
            file) MANIFEST_FILES+=("$path") ;;
            dir) MANIFEST_DIRS+=("$path") ;;
            *) die "$1: unknown entry '$kind': the manifest is damaged" ;;
        esac
    done <"$1"
}

uninstall() {
    if [ ! -f "$DESTDIR$MANIFEST" ]; then
        echo "nudge uninstall: no Nudge installation is recorded under ${DESTDIR}$PREFIX ($DESTDIR$MANIFEST is missing): nothing to remove" >&2
        return 0
    fi
    read_manifest "$DESTDIR$MANIFEST"
    local path removed=0 failed=0
    # The manifest itself goes last, so that a failed uninstall can be run again.
    for path in "${MANIFEST_FILES[@]}"; do
        [ "$path" = "$MANIFEST" ] && continue
        if [ -L "$DESTDIR$path" ] || [ -e "$DESTDIR$path" ]; then
            if [ -d "$DESTDIR$path" ] && [ ! -L "$DESTDIR$path" ]; then
                echo "nudge uninstall: $DESTDIR$path is a directory now; left alone" >&2
                failed=$((failed + 1))
            elif rm -f -- "$DESTDIR$path"; then
                echo "removed $DESTDIR$path"
                removed=$((removed + 1))
            else
                failed=$((failed + 1))
            fi
        fi
    done
    if [ $failed -gt 0 ]; then
        die "$failed file(s) could not be removed; the manifest stays, so that make uninstall can run again"
    fi
    rm -f -- "$DESTDIR$MANIFEST"
    # Directories deepest first (the manifest lists them so), each only if nothing else is in it.
    for path in "${MANIFEST_DIRS[@]}"; do
        if [ -d "$DESTDIR$path" ]; then
            if rmdir -- "$DESTDIR$path" 2>/dev/null; then
                echo "removed $DESTDIR$path/"
            else
                echo "kept $DESTDIR$path/: it holds files that are not Nudge's"
            fi
        fi
    done
    echo "Nudge uninstalled from ${DESTDIR}$PREFIX ($removed files)."
}

if [ "$action" = uninstall ]; then
    uninstall
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Install: the version, and the files staged in a temporary directory

for name in NUDGE_LIB NUDGE_CLI NUDGE_HEADER NUDGE_MAN NUDGE_BASH NUDGE_ZSH; do
    [ -f "${!name:-}" ] || die "$name='${!name:-}' is missing: build first (make lib cli)"
done
command -v patchelf >/dev/null || die "patchelf is missing (Debian package patchelf; make install installs it)"

# The version, from the generated header (which has it from Sources/nudge-options/Version.swift).
header_define() {
    local value
    value=$(sed -n "s/^#define NUDGE_$1 \([0-9][0-9]*\)\$/\1/p" "$NUDGE_HEADER")
    [ -n "$value" ] || die "$NUDGE_HEADER has no '#define NUDGE_$1 <number>'"
    echo "$value"
}
MAJOR=$(header_define VERSION_MAJOR)
MINOR=$(header_define VERSION_MINOR)
PATCH=$(header_define VERSION_PATCH)
ABI=$(header_define ABI_VERSION)
VERSION=$MAJOR.$MINOR.$PATCH
# docs/INSTALL.md: the soname follows the ABI version; the file name adds the release.
SONAME=libnudge.so.$ABI
REALNAME=$SONAME.$VERSION

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/nudge-install.XXXXXX")
CREATED=()   # directories this run created, shallowest first
TEMPS=()     # files written under temporary names, not yet renamed
PLACED=()    # plan indexes renamed into place
BACKUPS=()   # per plan index: where the file it replaced was kept, or ""

# Undoes whatever this run changed, when it did not finish.
rollback() {
    local i path
    for ((i = ${#PLACED[@]} - 1; i >= 0; i--)); do
        path=$DESTDIR${DEST[${PLACED[i]}]}
        if [ -n "${BACKUPS[${PLACED[i]}]}" ]; then
            mv -f -T -- "${BACKUPS[${PLACED[i]}]}" "$path" || echo "nudge install: could not restore $path" >&2
        else
            rm -f -- "$path"
        fi
    done
    for path in "${TEMPS[@]}"; do rm -f -- "$path"; done
    for ((i = ${#CREATED[@]} - 1; i >= 0; i--)); do rmdir -- "${CREATED[i]}" 2>/dev/null || true; done
}
finish() {
    local status=$?
    [ $status -eq 0 ] || rollback
    rm -rf -- "$STAGE"
    if [ $status -ne 0 ]; then
        echo "nudge install: nothing was installed under ${DESTDIR}$PREFIX" >&2
    fi
}
trap finish EXIT

# The plan: what goes where. KIND file (SRC a staged file, MODE) or link (SRC the link's target).
KIND=() SRC=() DEST=() MODE=()
plan() {
    KIND+=("$1") SRC+=("$2") DEST+=("$3") MODE+=("${4:-}")
}

cp -- "$NUDGE_LIB" "$STAGE/$REALNAME"
# The in-tree build has no soname (see install.mk); the installed copy gets one, and loses the
# build's RUNPATH ($ORIGIN): its own dependencies are system libraries.
patchelf --set-soname "$SONAME" "$STAGE/$REALNAME"
patchelf --remove-rpath "$STAGE/$REALNAME"
[ "$(patchelf --print-soname "$STAGE/$REALNAME")" = "$SONAME" ] || die "patchelf did not set the soname $SONAME"

# The pointer size the library was built for (ELF class: 1 is 32-bit, 2 is 64-bit).
case "$(od -An -t u1 -j 4 -N 1 "$NUDGE_LIB" | tr -d ' ')" in
    1) POINTER_SIZE=4 ;;
    2) POINTER_SIZE=8 ;;
    *) die "$NUDGE_LIB is not an ELF library" ;;
esac

# render TEMPLATE OUTPUT NAME=VALUE...: the template with each @NAME@ replaced.
render() {
    local template=$1 out=$2 pair value
    shift 2
    local script=()
    for pair in "$@"; do
        value=${pair#*=}
        value=${value//\\/\\\\}
        value=${value//|/\\|}
        value=${value//&/\\&}
        script+=(-e "s|@${pair%%=*}@|$value|g")
    done
    sed "${script[@]}" "$template" >"$out"
    if grep -n '@[A-Z_]*@' "$out" >&2; then die "$template: a placeholder above has no value"; fi
}

# pkg-config: paths from ${prefix} where they lie under it.
pc_exec_prefix=$(from '${prefix}' "$PREFIX" "$EXEC_PREFIX")
if rel=$(below "$EXEC_PREFIX" "$LIBDIR"); then pc_libdir="\${exec_prefix}${rel:+/$rel}"; else pc_libdir=$(from '${prefix}' "$PREFIX" "$LIBDIR"); fi
render "$here/nudge.pc.in" "$STAGE/nudge.pc" \
    VERSION="$VERSION" PREFIX="$PREFIX" EXEC_PREFIX="$pc_exec_prefix" LIBDIR="$pc_libdir" \
    INCLUDEDIR="$(from '${prefix}' "$PREFIX" "$INCLUDEDIR")"

# CMake: the prefix from the config file's own directory, when that lies under the prefix.
if rel=$(below "$PREFIX" "$CMAKEDIR"); then
    cmake_prefix="\${CMAKE_CURRENT_LIST_DIR}${rel:+/$(updirs "$rel")}"
else
    cmake_prefix=$PREFIX
fi
render "$here/NudgeConfig.cmake.in" "$STAGE/NudgeConfig.cmake" \
    VERSION="$VERSION" MAJOR="$MAJOR" MINOR="$MINOR" PREFIX="$cmake_prefix" \
    LIBDIR="$(from '${_nudge_prefix}' "$PREFIX" "$LIBDIR")" \
    INCLUDEDIR="$(from '${_nudge_prefix}' "$PREFIX" "$INCLUDEDIR")" REALNAME="$REALNAME" SONAME="$SONAME"
render "$here/NudgeConfigVersion.cmake.in" "$STAGE/NudgeConfigVersion.cmake" \
    VERSION="$VERSION" MAJOR="$MAJOR" POINTER_SIZE="$POINTER_SIZE"

# 644: a shared library needs no execute bit (as Debian policy asks).
plan file "$STAGE/$REALNAME" "$LIBDIR/$REALNAME" 644
plan link "$REALNAME" "$LIBDIR/$SONAME"
plan link "$REALNAME" "$LIBDIR/libnudge.so"
plan file "$NUDGE_HEADER" "$INCLUDEDIR/nudge.h" 644
plan file "$STAGE/nudge.pc" "$PKGCONFIGDIR/nudge.pc" 644
plan file "$STAGE/NudgeConfig.cmake" "$CMAKEDIR/NudgeConfig.cmake" 644
plan file "$STAGE/NudgeConfigVersion.cmake" "$CMAKEDIR/NudgeConfigVersion.cmake" 644
plan file "$NUDGE_CLI" "$BINDIR/nudge" 755
plan file "$NUDGE_BASH" "$BASHCOMPDIR/nudge" 644
plan file "$NUDGE_ZSH" "$ZSHCOMPDIR/_nudge" 644
plan file "$NUDGE_MAN" "$MANDIR/man1/nudge.1" 644
plan file "$STAGE/install-manifest.txt" "$MANIFEST" 644 # written below, once the directories are known

# Two entries for one path (say BINDIR=LIBDIR with a file named alike) would undo each other.
duplicate=$(printf '%s\n' "${DEST[@]}" | sort | uniq -d | head -1)
[ -z "$duplicate" ] || die "two files would go to $duplicate: check the directories"

# ---------------------------------------------------------------------------------------------
# Install: directories, then every file under a temporary name, then the renames

# Refuse a directory where a file goes before changing anything.
for path in "${DEST[@]}"; do
    if [ -d "$DESTDIR$path" ] && [ ! -L "$DESTDIR$path" ]; then die "$DESTDIR$path is a directory"; fi
done

# The directories, created shallowest first; each one created is recorded for the manifest.
for path in "${DEST[@]}"; do
    dir=$(dirname -- "$DESTDIR$path")
    missing=()
    while [ ! -d "$dir" ]; do
        if [ -e "$dir" ] || [ -L "$dir" ]; then die "$dir is in the way: it is not a directory"; fi
        missing=("$dir" "${missing[@]}")
        dir=$(dirname -- "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -- "$dir" || die "cannot create $dir (can this user write under ${DESTDIR}$PREFIX?)"
        CREATED+=("$dir")
    done
done

# The manifest: files, then directories deepest first (an earlier install's directories stay
# listed while they exist; its files that this install does not replace are removed at the end).
OLD_FILES=()
CREATED_BEFORE=()
if [ -f "$DESTDIR$MANIFEST" ]; then
    read_manifest "$DESTDIR$MANIFEST"
    OLD_FILES=("${MANIFEST_FILES[@]}")
    for path in "${MANIFEST_DIRS[@]}"; do
        [ -d "$DESTDIR$path" ] && CREATED_BEFORE+=("$path")
    done
fi
{
    echo "# Nudge $VERSION: what make install put here; make uninstall removes exactly this."
    for path in "${DEST[@]}"; do echo "file $path"; done
    {
        # Under a DESTDIR every directory is new, which says nothing of the system the files will
        # go to: only Nudge's own directories are recorded then.
        for path in "${CREATED[@]}"; do
            if [ -z "$DESTDIR" ]; then
                echo "dir $path"
            else
                case "${path#"$DESTDIR"}" in "$CMAKEDIR" | "$(dirname -- "$MANIFEST")") echo "dir ${path#"$DESTDIR"}" ;; esac
            fi
        done
        for path in "${CREATED_BEFORE[@]}"; do echo "dir $path"; done
    } |
        sort -u | awk '{ print length($0) "\t" $0 }' | sort -rn -s | cut -f 2-
} >"$STAGE/install-manifest.txt"

for i in "${!DEST[@]}"; do
    path=$DESTDIR${DEST[i]}
    temp=$(dirname -- "$path")/.nudge-install.$$.$(basename -- "$path")
    TEMPS+=("$temp")
    if [ "${KIND[i]}" = link ]; then
        ln -s -- "${SRC[i]}" "$temp" || die "cannot write in $(dirname -- "$path")"
    else
        { cp -- "${SRC[i]}" "$temp" && chmod "${MODE[i]}" "$temp"; } ||
            die "cannot write $temp (a read-only or full file system? can this user write there?)"
    fi
done

for i in "${!DEST[@]}"; do
    path=$DESTDIR${DEST[i]}
    BACKUPS[i]=""
    if [ -e "$path" ] || [ -L "$path" ]; then
        # The earlier file stays reachable until the end: a hard link, or a copy where links fail.
        backup=$(dirname -- "$path")/.nudge-previous.$$.$(basename -- "$path")
        ln -P -- "$path" "$backup" 2>/dev/null || cp -P -p -- "$path" "$backup" ||
            die "cannot keep a copy of $path"
        BACKUPS[i]=$backup
    fi
    mv -f -T -- "${TEMPS[i]}" "$path" || die "cannot rename ${TEMPS[i]} to $path"
    PLACED+=("$i")
    echo "installed $path"
done
TEMPS=()

# Done: the earlier files are no longer needed, nor an earlier version's that this one replaces.
for backup in "${BACKUPS[@]}"; do [ -z "$backup" ] || rm -f -- "$backup"; done
for path in "${OLD_FILES[@]}"; do
    if ! printf '%s\n' "${DEST[@]}" | grep -qxF -- "$path"; then
        rm -f -- "$DESTDIR$path" && echo "removed $DESTDIR$path (from the earlier install)"
    fi
done
PLACED=()
CREATED=()

echo "Nudge $VERSION installed under ${DESTDIR}$PREFIX: $SONAME in $DESTDIR$LIBDIR, the nudge tool in $DESTDIR$BINDIR."
if [ -z "$DESTDIR" ]; then
    echo "Programs find $SONAME at run time once $LIBDIR is in the loader's cache (ldconfig, as root,"
    echo "for a directory /etc/ld.so.conf lists), or through an rpath. make uninstall removes it all again."
fi
