"""The `nudge` binary run as a user runs it, on small IDX files written here.

NUDGE_CLI names the binary (make test-cli sets it to .build/release/nudge).
"""
import gzip
import os
import random
import struct
import subprocess
from pathlib import Path

import pytest

BINARY = os.environ.get("NUDGE_CLI") or str(Path(__file__).resolve().parents[2] / ".build/release/nudge")

SIDE = 6            # images are SIDE x SIDE
CLASSES = 4
FEATURES = SIDE * SIDE


def run(*args, env=None, cwd=None):
    """Runs nudge with `args`; returns the CompletedProcess (stdout and stderr as bytes)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([BINARY, *map(str, args)], capture_output=True, env=full_env, cwd=cwd, timeout=60)


def write_idx(path, dims, values, compress=False):
    """An IDX file of unsigned bytes with dimensions `dims`."""
    payload = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + bytes(values)
    (gzip.open if compress else open)(path, "wb").write(payload)


def make_set(folder, name, count, seed, label_noise=0.0, compress=False):
    """Images whose class k shows as a bright row k, with noise;
    `label_noise` of the labels are replaced by random ones, so that accuracy stays below 1."""
    rng = random.Random(seed)
    pixels, labels = [], []
    for _ in range(count):
        label = rng.randrange(CLASSES)
        for r in range(SIDE):
            for c in range(SIDE):
                pixels.append((200 if r == label else 20) + rng.randrange(50))
        labels.append(rng.randrange(CLASSES) if rng.random() < label_noise else label)
    suffix = ".gz" if compress else ""
    images = folder / f"{name}-images.idx{suffix}"
    label_file = folder / f"{name}-labels.idx{suffix}"
    write_idx(images, [count, SIDE, SIDE], pixels, compress)
    write_idx(label_file, [count], labels, compress)
    return images, label_file, labels


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Training, validation and test sets, and a model trained on them once for the session."""
    folder = tmp_path_factory.mktemp("data")
    sets = {
        "train": make_set(folder, "train", 600, seed=1, compress=True),
        "valid": make_set(folder, "valid", 100, seed=2),
        "test": make_set(folder, "test", 200, seed=3, label_noise=0.2),
    }
    model = folder / "model.nudge"
    result = run("train", "--images", sets["train"][0], "--labels", sets["train"][1],
                 "--hidden", "16", "--epochs", "4", "--seed", "7", "--class-names", "top,upper,lower,bottom",
                 "--output", model)
    assert result.returncode == 0, result.stderr.decode()
    return {"folder": folder, "model": model, "train_log": result.stderr.decode(), **sets}
