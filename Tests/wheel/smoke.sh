#!/usr/bin/env bash
# The Python package installed as a user installs it (make test-wheel, make test-sdist):
#
#   smoke.sh dist/nudge-<version>-py3-none-manylinux_*.whl   with no Swift on PATH: libnudge.so must
#                                                           take OpenBLAS and zlib from the wheel
#   smoke.sh dist/nudge-<version>.tar.gz                     pip builds libnudge.so with Swift
#
# A fresh virtual environment in a temporary folder (no system site-packages; numpy from PyPI), run
# from another temporary folder without PYTHONPATH or NUDGE_LIBRARY, so that nothing of the
# repository can be imported; then Tests/wheel/smoke.py trains, saves, reloads and predicts, and
# ends with `smoke: N passed, N failed`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
data=/usr/share/datasets/fashion-mnist
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: smoke.sh WHEEL|SDIST (one existing file; got: $*)" >&2; exit 2; }
artifact=$(realpath "$1")
# The interpreter itself, not a shim on PATH (pyenv's would look for its versions through PATH).
python=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE VIRTUAL_ENV NUDGE_LIBRARY LD_LIBRARY_PATH LD_PRELOAD

case "$artifact" in
  *.whl)
    mode=wheel
    PATH=$(tr ':' '\n' <<<"$PATH" | grep -vi swift | paste -sd: -)
    export PATH
    if command -v swift >/dev/null; then
      echo "smoke: a swift is still on PATH without its folders: $(command -v swift)" >&2
      exit 1
    fi
    echo "== $(basename "$artifact"): $(du -h "$artifact" | cut -f1) ($(stat -c %s "$artifact") bytes)"
    unzip -l "$artifact"
    ;;
  *.tar.gz)
    mode=sdist
    echo "== $(basename "$artifact"): $(du -h "$artifact" | cut -f1), built with $(command -v swift || echo 'no swift on PATH')"
    ;;
  *) echo "smoke: $artifact is neither a wheel nor an sdist" >&2; exit 2 ;;
esac

"$python" -m venv "$tmp/venv"
mkdir "$tmp/run"
cp "$here/smoke.py" "$tmp/run/"
cd "$tmp/run"
echo "== pip install $(basename "$artifact") into a fresh virtual environment"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$artifact"
args=(--mode "$mode" --repository "$repo")
[ -d "$data" ] && args+=(--data "$data")
"$tmp/venv/bin/python" -I smoke.py "${args[@]}"
