"""The reference peer: a hand-written numpy mini-batch MLP, written to be as fast as plain numpy allows.

    numpy_mlp.py train --task 1 --epochs 3 --seed 1     one benchmark task, per-epoch seconds
    numpy_mlp.py infer                                  forward passes, 10,000 samples and 1 sample
    numpy_mlp.py sgemm [--threads 1]                    numpy's own float32 matmul rate

Everything is float32. Activations are batch-major (one sample per row) and each weight matrix is
fan_out x fan_in, the layout of Nudge and PyTorch, so the forward pass is A @ W.T, the weight
gradient dZ.T @ A_prev and the input gradient dZ @ W: numpy hands those transposes to BLAS as
flags, without copies. Every product writes into a buffer allocated once (out=), ReLU and its
derivative run in place, and softmax with cross-entropy has the fused gradient (p - onehot) / m.
All parameters live in one flat vector (weights and biases are views into it), as do the
gradients, so an optimiser step is a few whole-vector in-place operations. The input layer's
gradient is never computed. Each epoch reshuffles with a seeded generator.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


class MLP:
    """ReLU hidden layers and a softmax output, with buffers for batches of up to `capacity` rows."""

    def __init__(self, sizes, rng, capacity):
        self.sizes = tuple(sizes)
        pairs = list(zip(sizes, sizes[1:]))
        self.params = np.empty(sum(fo * fi + fo for fi, fo in pairs), np.float32)
        self.grads = np.empty_like(self.params)
        self.W, self.b, self.gW, self.gb = [], [], [], []
        offset = 0
        for (fi, fo), (weights0, biases0) in zip(pairs, common.initial_layers(sizes, rng)):
            for flat, weights, biases in ((self.params, self.W, self.b), (self.grads, self.gW, self.gb)):
                weights.append(flat[offset:offset + fo * fi].reshape(fo, fi))
                biases.append(flat[offset + fo * fi:offset + fo * fi + fo])
            offset += fo * fi + fo
            # As Nudge initialises: He (normal) before a ReLU, Xavier (uniform) before the softmax.
            self.W[-1][...] = weights0
            self.b[-1][...] = biases0
        self.resize(capacity)

    def resize(self, capacity):
        """(Re)allocates the per-batch buffers for up to `capacity` rows."""
        self.capacity = capacity
        self.batch = np.empty((capacity, self.sizes[0]), np.float32)
        self.acts = [np.empty((capacity, fo), np.float32) for fo in self.sizes[1:]]
        self.deltas = [np.empty((capacity, fo), np.float32) for fo in self.sizes[1:-1]]
        self.masks = [np.empty((capacity, fo), bool) for fo in self.sizes[1:-1]]
        self.rows = np.arange(capacity)

    def forward(self, x):
        """Softmax probabilities of the rows of x (at most `capacity`), in the last layer's buffer."""
        m = len(x)
        a = x
        last = len(self.W) - 1
        for l, (w, b) in enumerate(zip(self.W, self.b)):
            z = self.acts[l][:m]
            np.matmul(a, w.T, out=z)
            z += b
            if l < last:
                np.maximum(z, 0, out=z)
            a = z
        a -= a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
        return a

    def gradient(self, x, y):
        """Fills self.grads with the gradient of the mean cross-entropy over the batch; returns the summed loss."""
        m = len(x)
        p = self.forward(x)
        rows = self.rows[:m]
        loss = -float(np.log(np.maximum(p[rows, y], 1e-30)).sum())
        # dC/dz of softmax + cross-entropy, fused: (p - onehot(y)) / m, in the probabilities' buffer.
        p[rows, y] -= 1
        p *= np.float32(1 / m)
        d = p
        for l in range(len(self.W) - 1, -1, -1):
            a_prev = x if l == 0 else self.acts[l - 1][:m]
            np.matmul(d.T, a_prev, out=self.gW[l])
            np.sum(d, axis=0, out=self.gb[l])
            if l == 0:
                break
            d_prev = self.deltas[l - 1][:m]
            np.matmul(d, self.W[l], out=d_prev)
            mask = self.masks[l - 1][:m]
            np.greater(a_prev, 0, out=mask)  # ReLU's derivative
            np.multiply(d_prev, mask, out=d_prev)
            d = d_prev
        return loss

    def predict_labels(self, x, chunk=2000):
        labels = np.empty(len(x), np.int64)
        for start in range(0, len(x), chunk):
            labels[start:start + chunk] = self.forward(x[start:start + chunk]).argmax(axis=1)
        return labels


class Momentum:
    """Classic momentum, as Nudge, scikit-learn and PyTorch define it: v = mu v - lr g; w += v."""

    def __init__(self, params, learning_rate, momentum):
        self.lr, self.mu = learning_rate, momentum
        self.velocity = np.zeros_like(params)

    def step(self, params, grads):
        v = self.velocity
        v *= self.mu
        grads *= self.lr
        v -= grads
        params += v


class Adam:
    """Adam with bias correction, PyTorch's form: w -= lr/c1 m / (sqrt(v / c2) + eps), here rearranged
    as lr sqrt(c2)/c1 m / (sqrt(v) + eps sqrt(c2)), which is the same number."""

    def __init__(self, params, learning_rate, beta1, beta2, epsilon):
        self.lr, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.scratch = np.empty_like(params)
        self.steps = 0

    def step(self, params, grads):
        self.steps += 1
        m, v, t = self.m, self.v, self.scratch
        root_c2 = math.sqrt(1 - self.beta2 ** self.steps)
        c1 = 1 - self.beta1 ** self.steps
        m *= self.beta1                       # m = b1 m + (1 - b1) g
        np.multiply(grads, 1 - self.beta1, out=t)
        m += t
        v *= self.beta2                       # v = b2 v + (1 - b2) g^2
        np.multiply(grads, grads, out=t)
        t *= 1 - self.beta2
        v += t
        np.sqrt(v, out=t)                     # w -= step m / (sqrt(v) + eps sqrt(c2))
        t += self.epsilon * root_c2
        np.divide(m, t, out=t)
        t *= self.lr * root_c2 / c1
        params -= t


def make_optimizer(task, params):
    if task["optimizer"] == "momentum":
        return Momentum(params, task["learning_rate"], task["momentum"])
    return Adam(params, task["learning_rate"], task["beta1"], task["beta2"], task["epsilon"])


def train_epoch(net, optimizer, x, y, batch_size, rng):
    """One pass over (x, y) in shuffled mini-batches; returns the mean training loss."""
    order = rng.permutation(len(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]
        # mode="clip" lets take() write straight into the buffer (mode="raise" would buffer a copy).
        batch = np.take(x, index, axis=0, out=net.batch[:len(index)], mode="clip")
        total += net.gradient(batch, y[index])
        optimizer.step(net.params, net.grads)
    return total / len(x)


def train(args):
    task = common.TASKS[args.task]
    rss_start = common.peak_rss_kib()
    x, y = common.load(args.data, "train")
    x_test, y_test = common.load(args.data, "t10k")
    rss_loaded = common.peak_rss_kib()
    rng = np.random.default_rng(args.seed)
    net = MLP(task["sizes"], rng, task["batch_size"])
    optimizer = make_optimizer(task, net.params)
    seconds, loss = [], float("nan")
    for epoch in range(args.epochs):
        start = time.perf_counter()
        loss = train_epoch(net, optimizer, x, y, task["batch_size"], rng)
        seconds.append(time.perf_counter() - start)
        print(f"numpy: epoch {epoch + 1}/{args.epochs}  {seconds[-1]:.3f} s  train loss {loss:.4f}", file=sys.stderr)
    net.resize(2000)
    accuracy = float((net.predict_labels(x_test) == y_test).mean())
    common.emit({"contender": "numpy", "task": args.task, "samples": len(x), "parameters": net.params.size,
                 "epoch_seconds": seconds, "train_loss": loss, "test_accuracy": accuracy,
                 "peak_rss_kib": {"start": rss_start, "loaded": rss_loaded, "end": common.peak_rss_kib()},
                 "numpy": np.__version__, "blas": common.blas_info()})


def median_seconds(function, calls, repeats):
    """Median over `repeats` of the mean seconds per call of `calls` calls (after one warm-up call)."""
    function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        timings.append((time.perf_counter() - start) / calls)
    return statistics.median(timings)


def infer(args):
    """The forward pass (X @ W.T + b, ReLU, softmax) of both networks: 10,000 test images in one
    call, and one image per call; the same measurements as bench/nudge_predict.c."""
    x_test, _ = common.load(args.data, "t10k")
    rng = np.random.default_rng(1)
    networks = []
    for task_id, task in sorted(common.TASKS.items()):
        net = MLP(task["sizes"], rng, len(x_test))
        one = x_test[:1]
        networks.append({
            "task": task_id,
            "batch_seconds": median_seconds(lambda: net.forward(x_test), 1, 3 if args.quick else (41 if task_id == 1 else 15)),
            "one_seconds": median_seconds(lambda: net.forward(one), 500 if args.quick else 20000, 3 if args.quick else 7),
        })
    common.emit({"contender": "numpy", "kind": "inference", "rows": len(x_test), "networks": networks})


def sgemm(args):
    """numpy's float32 matrix-multiply rate (its bundled BLAS), the figure to set numpy's and
    scikit-learn's training rates against."""
    from threadpoolctl import threadpool_limits

    n = args.n
    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32) - 0.5
    b = rng.random((n, n), dtype=np.float32) - 0.5
    c = np.empty((n, n), np.float32)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        np.matmul(a, b, out=c)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=c)
            seconds.append(time.perf_counter() - start)
        blas = common.blas_info()
    flops = 2.0 * n ** 3
    common.emit({"n": n, "repeats": args.repeats, "threads": blas[0]["num_threads"] if blas else None,
                 "best_gflops": flops / min(seconds) * 1e-9,
                 "median_gflops": flops / statistics.median(seconds) * 1e-9, "blas": blas})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", parents=[common.train_arguments("")], add_help=False)
    train_parser.set_defaults(run=train)
    infer_parser = commands.add_parser("infer")
    infer_parser.add_argument("--data", default=common.DEFAULT_DATA)
    infer_parser.add_argument("--quick", action="store_true")
    infer_parser.set_defaults(run=infer)
    sgemm_parser = commands.add_parser("sgemm")
    sgemm_parser.add_argument("--n", type=int, default=2048)
    sgemm_parser.add_argument("--repeats", type=int, default=10)
    sgemm_parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: numpy's)")
    sgemm_parser.set_defaults(run=sgemm)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
