#!/usr/bin/env bash
# Installs the Debian packages Nudge needs, and only those that are missing.
# Usage: .ci/ensure-deps.sh [build|test|demo|install|test-install|wheel|mpi|probe]...   (default: build)
set -euo pipefail

want=(libopenblas-dev zlib1g-dev pkg-config)
for role in "${@:-build}"; do
  case "$role" in
    build) ;;
    # Fashion-MNIST: the ONNX tests compare ONNX Runtime with nudge_predict on its 10,000 test images.
    test) want+=(libcmocka-dev valgrind locales dataset-fashion-mnist)
      # abidw and abidiff, for the ABI check (make abi-check, Tests/abi).
      want+=(abigail-tools) ;;
    demo) want+=(dataset-fashion-mnist) ;;
    # make install (patchelf: the installed library's soname); make test-install (cmake: a consumer)
    install) want+=(patchelf) ;;
    test-install) want+=(patchelf cmake) ;;
    # make wheel copies the pthread OpenBLAS into the wheel; build-dist.sh and Tests/wheel read zip files.
    wheel) want+=(libopenblas0-pthread unzip) ;;
    # Distributed training (docs/DISTRIBUTED.md): Open MPI's mpicc and mpirun (4.1 on Debian 12).
    mpi) want+=(libopenmpi-dev openmpi-bin) ;;
    # make gemm-shapes (bench/gemm_shapes.c): the small-matrix libraries it times beside OpenBLAS,
    # and a venv for PyPI's scipy-openblas32.
    probe) want+=(libblis-dev libxsmm-dev libdnnl-dev python3-venv) ;;
    *) echo "ensure-deps: unknown role '$role' (build, test, demo, install, test-install, wheel, mpi, probe)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ensure-deps: run as root or install sudo to get: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
