"""What the Python contenders of bench/run.py share: the two tasks, Fashion-MNIST loading, the
command line, and the one "RESULT {json}" line each process prints for run.py."""

import argparse
import gzip
import json
import struct
from pathlib import Path

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

#: The benchmark tasks. Every contender trains these with softmax cross-entropy, no L2 penalty.
TASKS = {
    1: {"sizes": (784, 128, 10), "optimizer": "momentum", "learning_rate": 0.01, "momentum": 0.9,
        "batch_size": 64},
    2: {"sizes": (784, 512, 256, 10), "optimizer": "adam", "learning_rate": 0.001,
        "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "batch_size": 128},
}


def initial_layers(sizes, rng):
    """Initial (weights, biases) of every layer, float32, weights fan_out x fan_in, drawn from the numpy
    Generator `rng` as Nudge initialises: He (normal) before a ReLU, Xavier (uniform) before the
    softmax, zero biases. The numpy, JAX and PyTorch peers all start from these, layer by layer in
    this order, so that with one seed they start from the same weights."""
    import math

    import numpy as np

    pairs = list(zip(sizes, sizes[1:]))
    layers = []
    for l, (fi, fo) in enumerate(pairs):
        if l < len(pairs) - 1:
            weights = rng.standard_normal((fo, fi), dtype=np.float32) * np.float32(math.sqrt(2 / fi))
        else:
            limit = math.sqrt(6 / (fi + fo))
            weights = rng.uniform(-limit, limit, (fo, fi)).astype(np.float32)
        layers.append((weights, np.zeros(fo, np.float32)))
    return layers


def read_idx(path):
    """An IDX file of unsigned bytes (gzip-compressed) as a uint8 array of its shape."""
    import numpy as np  # here, not at the top: bench/run.py imports TASKS before it has installed numpy

    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder, prefix):
    """Images as float32 rows scaled to [0, 1] (pixel * (1/255), as Nudge does) and int64 labels."""
    import numpy as np

    images = read_idx(Path(folder) / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(Path(folder) / f"{prefix}-labels-idx1-ubyte.gz")
    x = images.reshape(len(images), -1).astype(np.float32)
    x *= np.float32(1 / 255)
    return x, labels.astype(np.int64)


def train_arguments(description):
    """The command line every training contender takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--task", type=int, choices=sorted(TASKS), required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=DEFAULT_DATA)
    return parser


def peak_rss_kib():
    """Peak resident memory of this program so far, in KiB: VmHWM from /proc/self/status (getrusage's
    ru_maxrss would include what the parent process had when it forked this one)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def process_threads():
    """Threads of this process now (Threads: in /proc/self/status), or -1."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def blas_info():
    """The BLAS libraries loaded in this process as threadpoolctl sees them (numpy's first; scipy,
    which scikit-learn imports, brings its own copy), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{key: pool.get(key) for key in ("filepath", "internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def emit(result):
    """The line run.py reads."""
    print("RESULT " + json.dumps(result), flush=True)
