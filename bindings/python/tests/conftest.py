"""Shared setup for the nudge test suite.

`make test-python` runs it against the package installed in .build/venv. Run from a clone without
installing, `pytest bindings/python/tests` tests the source tree: the path below is added only when
no `nudge` package is installed, so that an installed one is the one tested."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # before anything imports pyplot: no display in tests

PYTHON_DIR = Path(__file__).resolve().parent.parent  # bindings/python
REPO_ROOT = PYTHON_DIR.parent.parent
HEADER = REPO_ROOT / "include" / "nudge.h"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

if importlib.util.find_spec("nudge") is None and str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def blobs(rng):
    """300 samples of 4 features in 3 well-separated classes: (X float32, y int64)."""
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float64)
    y = rng.integers(0, 3, 300)
    X = (centers[y] + 0.4 * rng.normal(size=(300, 4))).astype(np.float32)
    return X, y


def _run_python(code, env_update=None, timeout=60, cwd=REPO_ROOT):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("NUDGE_LIBRARY", None)
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(cwd))


@pytest.fixture
def run_python():
    """run_python(code, env_update=None, timeout=60, cwd=REPO_ROOT): runs `code` in a fresh interpreter
    with bindings/python importable (NUDGE_LIBRARY unset unless given) and returns the CompletedProcess."""
    return _run_python
