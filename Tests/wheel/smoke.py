"""The installed package used as a user uses it; run by smoke.sh inside a fresh virtual environment,
from a folder outside the repository, with `python -I` (no PYTHONPATH, no script folder on sys.path).

    smoke.py --mode wheel|sdist --repository ROOT [--data FASHION_MNIST_FOLDER]

Checks that nudge and libnudge.so come from the environment's site-packages, trains a small network
(on Fashion-MNIST's test file if the folder is given: read through the library's gzip reader, so
zlib is used; else on generated data), saves, reloads and predicts. For a wheel, libnudge.so must
find OpenBLAS (libgfortran, libquadmath) and zlib in the wheel's nudge.libs/, both by `ldd` and in
this process's memory map. Prints `smoke: N passed, N failed` and exits 1 if any check failed."""

import argparse
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

import nudge

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def inside(path, folder):
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def data(folder):
    """(X_train, y_train, X_test, y_test, classes)."""
    if folder:
        X, y = nudge.load_idx(Path(folder) / "t10k-images-idx3-ubyte.gz", Path(folder) / "t10k-labels-idx1-ubyte.gz")
        print(f"data: Fashion-MNIST's test file ({len(X)} images): 8000 to train, 2000 to test")
        return X[:8000], y[:8000], X[8000:], y[8000:], 10
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 20)) * 2
    y = rng.integers(0, 4, 3000)
    X = (centers[y] + rng.normal(size=(3000, 20))).astype(np.float32)
    print("data: 3000 generated samples of 20 features in 4 classes")
    return X[:2400], y[:2400], X[2400:], y[2400:], 4


def train_save_load(folder):
    X, y, X_test, y_test, classes = data(folder)
    net = nudge.Network([X.shape[1], 32, classes], hidden="relu", output="softmax", seed=0)
    net.fit(X, y, epochs=3, batch_size=64, learning_rate=0.01, verbose=False)
    accuracy = float(np.mean(net.classify(X_test) == y_test))
    check("accuracy well above chance", accuracy > 2.5 / classes, f"{accuracy:.3f} (chance {1 / classes:.3f})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "smoke.nudge"
        net.save(path)
        loaded = nudge.Network.load(path)
        check("save, load, predict: the same outputs", np.array_equal(loaded.predict(X_test), net.predict(X_test)),
              f"{path.stat().st_size} bytes, layers {loaded.layer_sizes}")


def resolved_by_ldd(library):
    """{needed name: resolved path} from `ldd`, printed whole."""
    out = subprocess.run(["ldd", str(library)], check=True, capture_output=True, text=True).stdout
    print(f"ldd {library}:\n{out.rstrip()}")
    found = {}
    for line in out.splitlines():
        match = re.match(r"\s*(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def vendored(library, site):
    libs = Path(site) / "nudge.libs"
    found = resolved_by_ldd(library)
    check("ldd resolves every library", all(path != "not found" for path in found.values()),
          ", ".join(name for name, path in found.items() if path == "not found"))
    for name, pattern in (("OpenBLAS", r"libopenblas"), ("libgfortran", r"libgfortran"),
                          ("libquadmath", r"libquadmath"), ("zlib", r"libz[-.]")):
        hits = {needed: path for needed, path in found.items() if re.match(pattern, needed)}
        check(f"ldd: {name} from the wheel's nudge.libs", bool(hits) and all(inside(p, libs) for p in hits.values()),
              ", ".join(f"{n} => {os.path.realpath(p)}" for n, p in hits.items()) or "not needed")
    # What this process really mapped: the wheel's OpenBLAS and none of the system's (numpy's wheel
    # brings its own, renamed), and the wheel's zlib (Python's zlib module may map the system's too).
    mapped = {line.split(maxsplit=5)[5] for line in Path("/proc/self/maps").read_text().splitlines()
              if len(line.split(maxsplit=5)) == 6 and ".so" in line}
    blas = sorted(p for p in mapped if "openblas" in Path(p).name)
    check("loaded OpenBLAS: the wheel's, not the system's",
          any(inside(p, libs) for p in blas) and not any(p.startswith(("/usr/", "/lib")) for p in blas), ", ".join(blas))
    zlib = sorted(p for p in mapped if re.match(r"libz[-.]", Path(p).name))
    check("loaded zlib includes the wheel's", any(inside(p, libs) for p in zlib), ", ".join(zlib))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["wheel", "sdist"], required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--data")
    args = parser.parse_args()

    site = sysconfig.get_paths()["platlib"]
    print(f"nudge {nudge.__version__}, library {nudge.library_version()}, Python {sys.version.split()[0]}")
    print(f"nudge.library_path: {nudge.library_path}")
    check("no sys.path entry in the repository", not any(inside(p or ".", args.repository) for p in sys.path),
          ", ".join(p for p in sys.path if inside(p or ".", args.repository)))
    check("package from the environment's site-packages", inside(nudge.__file__, site), nudge.__file__)
    check("library is the package's own copy",
          os.path.realpath(nudge.library_path) == os.path.realpath(Path(site) / "nudge" / "libnudge.so"))
    train_save_load(args.data)
    if args.mode == "wheel":
        vendored(nudge.library_path, site)
    else:
        resolved_by_ldd(nudge.library_path)
    failed = results.count(False)
    print(f"smoke: {results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
