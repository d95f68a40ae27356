"""Fashion-MNIST accuracy: the hyper-parameter search and the final runs behind docs/ACCURACY.md.

    python3 bench/accuracy.py search [NAME ...]   # candidates on a validation split of the training set
    python3 bench/accuracy.py final [NAME ...]    # chosen configurations: all 60,000 images, then the test set

`search` trains each candidate on the first 50,000 training images and measures the last 10,000
(never the test set) after every epoch. `final` trains on all 60,000 training images with the same
settings and seed, times the training call alone (wall time, loading excluded) and measures the
10,000 test images once. Every run is seeded, so accuracies repeat exactly on the same machine and
thread count (timings vary with the machine's load: measure on an idle one).

Needs the Python package (`make python`, then run with .build/venv/bin/python) or PYTHONPATH set
to bindings/python with the library built (`make lib`).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import nudge

DATA = os.environ.get("NUDGE_TEST_DATA", "/usr/share/datasets/fashion-mnist")

# Every run: ReLU hidden layers, softmax output, cross-entropy, Adam, inputs normalised by one global
# mean and standard deviation fitted on the training images. "dropout" lists the rate of the inputs,
# then of each hidden layer.
CANDIDATES = {
    "baseline": dict(sizes=[784, 128, 10], epochs=10, batch_size=32, learning_rate=0.001),
    "wide-1": dict(sizes=[784, 1024, 10], epochs=20, batch_size=128, learning_rate=0.001, dropout=[0.1, 0.3],
                   schedule="cosine"),
    "deep-256": dict(sizes=[784, 256, 256, 10], epochs=30, batch_size=128, learning_rate=0.001,
                     dropout=[0, 0.2, 0.2], schedule="cosine"),
    "fast": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=128, learning_rate=0.001, dropout=[0, 0.2, 0.2],
                 schedule="cosine"),
    "fast-b256": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=256, learning_rate=0.002,
                      dropout=[0, 0.2, 0.2], schedule="cosine"),
    "fast-input-dropout": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=128, learning_rate=0.001,
                               dropout=[0.2, 0.3, 0.3], schedule="cosine"),
    "fast-light-dropout": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=128, learning_rate=0.001,
                               dropout=[0, 0.1, 0.1], schedule="cosine"),
    "fast-b256-input-dropout": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=256, learning_rate=0.002,
                                    dropout=[0.2, 0.3, 0.3], schedule="cosine"),
    "wide-2x512": dict(sizes=[784, 512, 512, 10], epochs=20, batch_size=256, learning_rate=0.002,
                       dropout=[0.2, 0.4, 0.4], schedule="cosine"),
    "big": dict(sizes=[784, 1024, 512, 10], epochs=15, batch_size=256, learning_rate=0.002, dropout=[0, 0.3, 0.3],
                schedule="cosine"),
    # A 20-second budget (issue 15): the same network for fewer epochs, or narrower networks.
    "fast-b256-16": dict(sizes=[784, 512, 256, 10], epochs=16, batch_size=256, learning_rate=0.002,
                         dropout=[0, 0.2, 0.2], schedule="cosine"),
    "fast-b256-light-16": dict(sizes=[784, 512, 256, 10], epochs=16, batch_size=256, learning_rate=0.002,
                          dropout=[0, 0.1, 0.1], schedule="cosine"),
    "b512-20": dict(sizes=[784, 512, 256, 10], epochs=20, batch_size=512, learning_rate=0.003,
                    dropout=[0, 0.2, 0.2], schedule="cosine"),
    "b384-18": dict(sizes=[784, 512, 256, 10], epochs=18, batch_size=384, learning_rate=0.0025,
                    dropout=[0, 0.2, 0.2], schedule="cosine"),
    "mid-384": dict(sizes=[784, 384, 192, 10], epochs=20, batch_size=256, learning_rate=0.002,
                    dropout=[0, 0.2, 0.2], schedule="cosine"),
    "small-256": dict(sizes=[784, 256, 128, 10], epochs=24, batch_size=256, learning_rate=0.002,
                      dropout=[0, 0.2, 0.2], schedule="cosine"),
    "deep-256-b256": dict(sizes=[784, 256, 256, 10], epochs=24, batch_size=256, learning_rate=0.002,
                          dropout=[0, 0.2, 0.2], schedule="cosine"),
    # Longer budgets (up to 5 minutes of training).
    "long-512": dict(sizes=[784, 512, 256, 10], epochs=60, batch_size=256, learning_rate=0.002,
                     dropout=[0.1, 0.3, 0.3], schedule="cosine"),
    "long-1024": dict(sizes=[784, 1024, 512, 10], epochs=50, batch_size=256, learning_rate=0.002,
                      dropout=[0, 0.3, 0.3], schedule="cosine"),
}
# The configurations docs/ACCURACY.md reports on the test set, picked by validation accuracy: the
# best under 20 seconds of training (make demo's), and the best under 5 minutes.
FINAL = ["fast-b256-light-16", "long-1024"]


def load(prefix):
    return nudge.load_idx(f"{DATA}/{prefix}-images-idx3-ubyte.gz", f"{DATA}/{prefix}-labels-idx1-ubyte.gz")


def train(name, x, y, validation=None, seed=1, verbose=False):
    settings = dict(CANDIDATES[name])
    sizes = settings.pop("sizes")
    net = nudge.Network(sizes, hidden="relu", output="softmax", seed=seed)
    started = time.perf_counter()
    history = net.fit(x, y, optimizer="adam", normalize="global", seed=seed, validation_data=validation,
                      verbose=verbose, **settings)
    return net, history, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["search", "final"])
    parser.add_argument("names", nargs="*", help="configurations (default: all candidates, or the final ones)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object per run instead of a table row")
    args = parser.parse_args()
    names = args.names or (list(CANDIDATES) if args.mode == "search" else FINAL)
    for name in names:
        if name not in CANDIDATES:
            parser.error(f"unknown configuration {name!r}; known: {', '.join(CANDIDATES)}")

    x, y = load("train")
    print(f"Nudge {nudge.library_version()}, {nudge.get_num_threads()} threads, data {DATA}", file=sys.stderr)
    if args.mode == "search":
        fit_x, fit_y, val_x, val_y = x[:50000], y[:50000], x[50000:], y[50000:]
        print(f"{'configuration':<20} {'epochs':>6} {'val last':>9} {'val best':>9} {'at':>3} {'train s':>8}")
        for name in names:
            _, history, seconds = train(name, fit_x, fit_y, (val_x, val_y), seed=args.seed)
            curve = history.val_accuracy
            best = int(np.argmax(curve))
            row = dict(name=name, epochs=len(curve), val_last=curve[-1], val_best=curve[best], best_epoch=best + 1,
                       seconds=seconds, curve=[round(v, 4) for v in curve])
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{name:<20} {len(curve):>6} {curve[-1]:>9.4f} {curve[best]:>9.4f} {best + 1:>3} {seconds:>8.1f}",
                      flush=True)
    else:
        test_x, test_y = load("t10k")
        print(f"{'configuration':<20} {'epochs':>6} {'test acc':>9} {'train s':>8}")
        for name in names:
            net, history, seconds = train(name, x, y, seed=args.seed)
            accuracy = float(np.mean(net.classify(test_x) == test_y))
            if args.json:
                print(json.dumps(dict(name=name, epochs=len(history), test_accuracy=accuracy, seconds=seconds)), flush=True)
            else:
                print(f"{name:<20} {len(history):>6} {accuracy:>9.4f} {seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
