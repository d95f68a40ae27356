#!/usr/bin/env python3
"""The paper estimate of docs/DISTRIBUTED.md: time per training step on N nodes, data-parallel.

    python3 bench/mpi_model.py            # the tables of the document, as Markdown
    python3 bench/mpi_model.py --batch 512 --rate 400 --update-bandwidth 40

    step(N)   = grad(batch / N) + update + allreduce(N)
    grad(b)   = b * F / (R * e(b))            F: training FLOPs per sample, R: sgemm rate of a node
    update    = 28 bytes * P / memory bandwidth   (Adam reads w, g, m, v and writes w, m, v; every
                                                   node updates every parameter)
    allreduce = 2 (N - 1) / N * 4 P / bandwidth + 2 (N - 1) * latency      (a ring)
    speed-up  = step(1) / step(N), where step(1) has no allreduce

Nothing here is measured by this script: every input is an assumption stated in the document (and
below); `bench/mpi_scaling.sh` measures the real thing on one machine.
"""

import argparse

# Per-sample efficiency of the gradient (forward and backward products) against the node's sgemm
# rate, by the rows each node computes per step. 128 and 256 are calibrated on this project's
# measured epoch times (bench/RESULTS.md, docs/ACCURACY.md) once the update is taken out; smaller
# batches are assumptions (thin products run further from the sgemm peak).
EFFICIENCY = {
    "784-512-256-10": {256: 0.70, 128: 0.70, 64: 0.60, 32: 0.45, 16: 0.30, 8: 0.18, 4: 0.10},
    "784-2048-2048-10": {256: 0.75, 128: 0.75, 64: 0.75, 32: 0.60, 16: 0.45, 8: 0.30, 4: 0.18},
}
NETWORKS = {"784-512-256-10": [784, 512, 256, 10], "784-2048-2048-10": [784, 2048, 2048, 10]}
LINKS = [("10 Gb/s", 10e9, 20e-6), ("100 Gb/s", 100e9, 5e-6)]
NODES = [1, 2, 4, 8, 16, 32, 64]


def parameters(sizes):
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def flops_per_sample(sizes):
    """Forward and weight-gradient products for every layer, input gradients for all but the first."""
    weights = [a * b for a, b in zip(sizes, sizes[1:])]
    return 2 * sum(weights) + 2 * sum(weights) + 2 * sum(weights[1:])


def efficiency(name, rows):
    table = EFFICIENCY[name]
    return table[min(table, key=lambda k: abs(k - rows))]


def rows_of(name, args):
    sizes = NETWORKS[name]
    p, f = parameters(sizes), flops_per_sample(sizes)
    update = 28 * p / (args.update_bandwidth * 1e9)

    def grad(n):
        b = args.batch / n
        return b * f / (args.rate * 1e9 * efficiency(name, b))
    single = grad(1) + update
    for label, bits, latency in LINKS:
        for n in NODES:
            comm = 0.0 if n == 1 else 2 * (n - 1) / n * 4 * p * 8 / bits + 2 * (n - 1) * latency
            step = grad(n) + update + comm
            yield label, n, args.batch / n, grad(n), update, comm, step, single / step


def table(name, args):
    sizes = NETWORKS[name]
    lines = [f"**{name}**: {parameters(sizes):,} parameters ({4 * parameters(sizes) / 1e6:.2f} MB of float32), "
             f"{flops_per_sample(sizes) / 1e6:.2f} MFLOP per sample, global batch {args.batch}",
             "",
             "| link | N | rows per node | gradient (ms) | update (ms) | allreduce (ms) | step (ms) | speed-up |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, n, b, grad, update, comm, step, speedup in rows_of(name, args):
        lines.append(f"| {label} | {n} | {b:g} | {grad * 1e3:.3f} | {update * 1e3:.3f} | {comm * 1e3:.3f} | "
                     f"{step * 1e3:.3f} | {speedup:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="global batch size (default 256)")
    parser.add_argument("--rate", type=float, default=200, help="a node's sgemm rate, GFLOP/s (default 200)")
    parser.add_argument("--update-bandwidth", type=float, default=20,
                        help="memory bandwidth for the optimiser step, GB/s (default 20)")
    args = parser.parse_args()
    print("\n\n".join(table(name, args) for name in NETWORKS))


if __name__ == "__main__":
    main()
