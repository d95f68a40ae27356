"""PyTorch's contender in bench/run.py (only when torch is installed): a plain training loop on one
benchmark task, float32 on the CPU with torch.set_num_threads(2).

    torch_mlp.py --task 1 --epochs 3 --seed 1

Mini-batches are drawn from a seeded permutation by indexing the data tensor (no DataLoader,
whose worker machinery is not what is being compared). Initialisation as Nudge's: He (normal)
before a ReLU, Xavier (uniform) before the softmax, zero biases.
"""

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def build(sizes):
    layers = []
    for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        linear = nn.Linear(fan_in, fan_out)
        if l < len(sizes) - 2:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            layers += [linear, nn.ReLU()]
        else:
            nn.init.xavier_uniform_(linear.weight)
            layers.append(linear)
        nn.init.zeros_(linear.bias)
    return nn.Sequential(*layers)  # the softmax lives in the loss (cross_entropy on logits)


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

    model = build(task["sizes"])
    if task["optimizer"] == "momentum":
        optimizer = torch.optim.SGD(model.parameters(), lr=task["learning_rate"], momentum=task["momentum"])
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=task["learning_rate"],
                                     betas=(task["beta1"], task["beta2"]), eps=task["epsilon"])
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)
    batch_size, n = task["batch_size"], len(x)
    seconds, mean_loss = [], float("nan")
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
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
                 "torch": torch.__version__, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
