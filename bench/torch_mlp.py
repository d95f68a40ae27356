"""PyTorch's contender in bench/run.py (`make bench PEERS=torch`): a plain training loop on one
benchmark task, float32 on the CPU with torch.set_num_threads(2).

    .build/bench/venv-torch/bin/python bench/torch_mlp.py --task 1 --epochs 3 --seed 1

Same network, loss, optimiser, hyper-parameters and batches as bench/numpy_mlp.py: the initial
weights (common.initial_layers: He normal before a ReLU, Xavier uniform before the softmax, zero
biases) and every epoch's permutation come from a numpy Generator seeded and drawn in the same
order as there. Mini-batches are gathered by indexing the data tensor (no DataLoader, whose worker
machinery is not what is being compared). torch.optim.SGD keeps v = mu v + g and steps w -= lr v,
the numpy peer's momentum scaled by lr (the same weights at a constant learning rate). The RESULT
line says which BLAS, oneDNN and threads this build of PyTorch has.
"""

import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def build(sizes, rng):
    layers = []
    initial = common.initial_layers(sizes, rng)
    for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        linear = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(initial[l][0]))
            linear.bias.copy_(torch.from_numpy(initial[l][1]))
        layers += [linear, nn.ReLU()] if l < len(sizes) - 2 else [linear]
    return nn.Sequential(*layers)  # the softmax lives in the loss (cross_entropy on logits)


def describe():
    """The facts the report shows about this build: its BLAS and oneDNN, CPU kernels and threads."""
    config = torch.__config__.show()
    libraries = [line.strip(" -") for line in config.splitlines()
                 if "Math Kernel Library" in line or "MKL-DNN" in line or "OpenBLAS" in line or "OpenMP" in line]
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    backend = re.search(r"ATen parallel backend: (.*)", torch.__config__.parallel_info())
    return {"torch": torch.__version__, "cuda_build": torch.version.cuda, "blas": blas.group(1) if blas else None,
            "libraries": libraries, "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "parallel_backend": backend.group(1).strip() if backend else None,
            "process_threads": common.process_threads()}


def main():
    args = common.train_arguments(__doc__.splitlines()[0]).parse_args()
    task = common.TASKS[args.task]
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rss_start = common.peak_rss_kib()
    x_np, y_np = common.load(args.data, "train")
    x_test_np, y_test_np = common.load(args.data, "t10k")
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    x_test, y_test = torch.from_numpy(x_test_np), torch.from_numpy(y_test_np)
    rss_loaded = common.peak_rss_kib()

    rng = np.random.default_rng(args.seed)
    model = build(task["sizes"], rng)
    if task["optimizer"] == "momentum":
        optimizer = torch.optim.SGD(model.parameters(), lr=task["learning_rate"], momentum=task["momentum"])
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=task["learning_rate"],
                                     betas=(task["beta1"], task["beta2"]), eps=task["epsilon"])
    loss_fn = nn.CrossEntropyLoss()
    batch_size, n = task["batch_size"], len(x)
    seconds, mean_loss = [], float("nan")
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n))
        total = torch.zeros(())
        for first in range(0, n, batch_size):
            index = order[first:first + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
        mean_loss = float(total) / n
        seconds.append(time.perf_counter() - start)
        print(f"torch: epoch {epoch + 1}/{args.epochs}  {seconds[-1]:.3f} s  train loss {mean_loss:.4f}",
              file=sys.stderr)
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(dim=1) == y_test).float().mean())
    common.emit({"contender": "torch", "task": args.task, "samples": n,
                 "parameters": sum(p.numel() for p in model.parameters()), "epoch_seconds": seconds,
                 "train_loss": mean_loss, "test_accuracy": accuracy,
                 "peak_rss_kib": {"start": rss_start, "loaded": rss_loaded, "end": common.peak_rss_kib()},
                 "kernel": describe()})


if __name__ == "__main__":
    main()
