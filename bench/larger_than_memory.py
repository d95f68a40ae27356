#!/usr/bin/env python3
"""Data larger than memory: one training epoch over a .npy file of more than 4 GiB, with the
process's anonymous memory (RssAnon) staying below 1 GiB (`make larger-than-memory`).

    python3 bench/larger_than_memory.py [--dir /var/tmp/nudge-large] [--size-gib 4.3]

The first run writes the file (about 4.3 GiB, plus its labels) under --dir: Fashion-MNIST's 60,000
training rows repeated with a little noise (pixel values 0..255 as float32, labels kept), through
np.lib.format.open_memmap, chunk by chunk, in a child process, so that writing it counts nothing
against the training process. Later runs reuse it. Then this process trains a 784-128-10 network
for one epoch with Network.fit on np.load(path, mmap_mode="r"): the library reads the rows straight
from the mapped file, whose pages count as RssFile (page cache the kernel can drop), not RssAnon.
A thread samples /proc/self/status every 0.2 s. Printed: peak RssAnon and RssFile, VmHWM, the file
size, the epoch's seconds, and the accuracy on the Fashion-MNIST test set; the last line is
"RESULT {json}". Exit status 1 when the peak RssAnon reaches --limit-mib (1024), 2 when --dir lacks
the free space for the file (nothing is written then).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

WIDTH = 784
ROW_BYTES = WIDTH * 4
DEFAULT_DATA = os.environ.get("NUDGE_TEST_DATA", "/usr/share/datasets/fashion-mnist")


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/var/tmp/nudge-large", help="where the .npy files are written and kept")
    parser.add_argument("--size-gib", type=float, default=4.3, help="size of the samples file (GiB)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="the folder of Fashion-MNIST's IDX files")
    parser.add_argument("--limit-mib", type=float, default=1024, help="fail when peak RssAnon reaches this")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)  # the child process
    return parser.parse_args(argv)


def paths(args):
    rows = math.ceil(args.size_gib * (1 << 30) / ROW_BYTES)
    folder = Path(args.dir)
    return rows, folder / f"fashion-{rows}-x.npy", folder / f"fashion-{rows}-y.npy"


def memory():
    """RssAnon, RssFile and VmHWM of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


class Sampler(threading.Thread):
    """Reads memory() every `interval` seconds and keeps the largest values, until stop()."""

    def __init__(self, interval):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = memory()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(self.interval):
            self.record()

    def record(self):
        for key, value in memory().items():
            self.peak[key] = max(self.peak[key], value)

    def stop(self):
        self.done.set()
        self.join()
        self.record()
        return self.peak


def ensure_space(folder, needed):
    """Exits with status 2 and a message when `folder`'s file system cannot hold `needed` more bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    margin = 256 << 20
    if free < needed + margin:
        print(f"larger_than_memory: not enough free space in {folder}: the files need {needed / (1 << 30):.2f} GiB "
              f"(and {margin >> 20} MiB to spare); the file system has {free / (1 << 30):.2f} GiB free. Choose another "
              "folder with --dir, or a smaller --size-gib.", file=sys.stderr)
        sys.exit(2)


def generate(args):
    """Writes the samples and labels files (the child process): each Fashion-MNIST training row in
    turn, plus noise, clipped to 0..255, in chunks through open_memmap; renamed into place at the end."""
    import numpy as np
    import nudge

    rows, x_path, y_path = paths(args)
    data = Path(args.data)
    images, labels = nudge.load_idx(data / "train-images-idx3-ubyte.gz", data / "train-labels-idx1-ubyte.gz")
    pixels = np.asarray(images) * np.float32(255)  # load_idx scales to [0, 1]; the file holds raw pixels
    temporary = [x_path.with_suffix(".partial.npy"), y_path.with_suffix(".partial.npy")]
    x = np.lib.format.open_memmap(temporary[0], mode="w+", dtype=np.float32, shape=(rows, WIDTH))
    y = np.lib.format.open_memmap(temporary[1], mode="w+", dtype=np.uint8, shape=(rows,))
    rng = np.random.default_rng(0)
    chunk = 16384
    for start in range(0, rows, chunk):
        source = np.arange(start, min(start + chunk, rows)) % len(pixels)
        noisy = pixels[source] + rng.standard_normal((len(source), WIDTH), dtype=np.float32) * np.float32(8)
        x[start:start + len(source)] = np.clip(noisy, 0, 255)
        y[start:start + len(source)] = labels[source]
        if start // chunk % 16 == 0:
            x.flush()
            print(f"  written {start + len(source):,} of {rows:,} rows", flush=True)
    x.flush()
    y.flush()
    del x, y
    os.replace(temporary[1], y_path)
    os.replace(temporary[0], x_path)


def prepare(args):
    """The files, written by a child process when missing."""
    rows, x_path, y_path = paths(args)
    if x_path.exists() and y_path.exists():
        return rows, x_path, y_path
    needed = rows * (ROW_BYTES + 1) + 2 * 128
    ensure_space(Path(args.dir), needed)
    print(f"writing {x_path} ({rows * ROW_BYTES / (1 << 30):.2f} GiB) and {y_path.name} from {args.data}", flush=True)
    started = time.monotonic()
    command = [sys.executable, os.path.abspath(__file__), "--generate", "--dir", args.dir,
               "--size-gib", str(args.size_gib), "--data", args.data]
    subprocess.run(command, check=True)
    print(f"written in {time.monotonic() - started:.0f} s", flush=True)
    return rows, x_path, y_path


def train(args, x_path, y_path):
    """One epoch from the mapped files, memory sampled throughout; returns the figures."""
    import numpy as np
    import nudge

    data = Path(args.data)
    X_test, y_test = nudge.load_idx(data / "t10k-images-idx3-ubyte.gz", data / "t10k-labels-idx1-ubyte.gz")
    X_test = np.asarray(X_test) * np.float32(255)  # the training file holds raw pixels; so does the test set here
    sampler = Sampler(args.interval)
    sampler.start()
    before = memory()
    X = np.load(x_path, mmap_mode="r")
    y = np.load(y_path, mmap_mode="r")
    net = nudge.Network([WIDTH, 128, 10], hidden="relu", output="softmax", seed=0)
    started = time.monotonic()
    history = net.fit(X, y, epochs=1, batch_size=args.batch_size, learning_rate=0.001, normalize="global",
                      verbose=False)
    fit_seconds = time.monotonic() - started
    peak = sampler.stop()
    _, accuracy = net.evaluate(X_test, y_test)
    return {"file_bytes": x_path.stat().st_size, "rows": int(X.shape[0]),
            "peak_rss_anon": peak["RssAnon"], "rss_anon_before": before["RssAnon"],
            "peak_rss_file": peak["RssFile"], "vm_hwm": peak["VmHWM"],
            "epoch_seconds": history.seconds[0], "fit_seconds": fit_seconds,
            "train_loss": history.train_loss[0], "test_accuracy": accuracy}


def report(result, limit):
    gib, mib = 1 << 30, 1 << 20
    print(f"file:         {result['file_bytes'] / gib:.2f} GiB ({result['rows']:,} rows of {WIDTH} float32)")
    print(f"peak RssAnon: {result['peak_rss_anon'] / mib:.0f} MiB (before fit: {result['rss_anon_before'] / mib:.0f} MiB;"
          f" limit {limit:.0f} MiB)")
    print(f"peak RssFile: {result['peak_rss_file'] / mib:.0f} MiB (the mapped file in the page cache)")
    print(f"VmHWM:        {result['vm_hwm'] / mib:.0f} MiB (anonymous and file pages together)")
    print(f"epoch:        {result['epoch_seconds']:.1f} s (fit: {result['fit_seconds']:.1f} s, with the finite "
          "check and the normalisation pass)")
    print(f"accuracy:     {result['test_accuracy']:.4f} on the Fashion-MNIST test set "
          f"(training loss {result['train_loss']:.4f})")
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None):
    args = arguments(argv)
    if args.generate:
        generate(args)
        return 0
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        if not (Path(args.data) / name).exists():
            print(f"larger_than_memory: {Path(args.data) / name} is missing; install Fashion-MNIST "
                  "(apt-get install dataset-fashion-mnist) or give its folder with --data", file=sys.stderr)
            return 2
    _, x_path, y_path = prepare(args)
    result = train(args, x_path, y_path)
    report(result, args.limit_mib)
    if result["peak_rss_anon"] >= args.limit_mib * (1 << 20):
        print(f"FAILED: peak RssAnon {result['peak_rss_anon'] / (1 << 20):.0f} MiB reached the limit of "
              f"{args.limit_mib:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
