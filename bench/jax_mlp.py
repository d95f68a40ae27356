"""JAX's contender in bench/run.py (`make bench PEERS=jax`): the numpy peer's task in JAX on the CPU,
each epoch one compiled function, a `lax.scan` over the full batches followed by the last, smaller one.

    .build/bench/venv-jax/bin/python bench/jax_mlp.py --task 1 --epochs 3 --seed 1

Same network, loss, optimiser, hyper-parameters and batches as bench/numpy_mlp.py: the initial weights
(common.initial_layers) and every epoch's permutation come from a numpy Generator seeded and drawn in
the same order as there, so with one seed both start from the same weights and see the same batches.
Everything is float32. The training images stay in JAX's memory; an epoch receives only the
permutation and gathers each batch inside the scan. The epoch function is compiled ahead of time
(`jit(...).lower(...).compile()`) and that time is reported apart, so no epoch time holds
compilation. XLA's CPU runtime picks its own kernels and threads (both cores by default); the
RESULT line says which fusions the compiled epoch's products went to.
"""

import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def forward(params, x):
    """Logits of the rows of x: ReLU hidden layers, a linear output (the softmax is in the loss)."""
    a = x
    for weights, biases in params[:-1]:
        a = jax.nn.relu(a @ weights.T + biases)
    weights, biases = params[-1]
    return a @ weights.T + biases


def mean_loss(params, x, y):
    """Mean softmax cross-entropy over the batch."""
    log_p = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))


def make_optimizer(task):
    """(initial state, step): the numpy peer's momentum SGD (v = mu v - lr g; w += v) or Adam
    (w -= lr sqrt(c2)/c1 m / (sqrt(v) + eps sqrt(c2)), PyTorch's form)."""
    tree = jax.tree_util.tree_map
    lr = task["learning_rate"]
    if task["optimizer"] == "momentum":
        mu = task["momentum"]

        def momentum_step(params, velocity, grads):
            velocity = tree(lambda v, g: mu * v - lr * g, velocity, grads)
            return tree(lambda w, v: w + v, params, velocity), velocity

        return (lambda params: tree(jnp.zeros_like, params)), momentum_step
    beta1, beta2, epsilon = task["beta1"], task["beta2"], task["epsilon"]

    def adam_step(params, state, grads):
        steps, m, v = state
        steps = steps + 1
        t = steps.astype(jnp.float32)
        c1, root_c2 = 1 - beta1 ** t, jnp.sqrt(1 - beta2 ** t)
        m = tree(lambda m, g: beta1 * m + (1 - beta1) * g, m, grads)
        v = tree(lambda v, g: beta2 * v + (1 - beta2) * g * g, v, grads)
        scale = lr * root_c2 / c1
        params = tree(lambda w, m, v: w - scale * m / (jnp.sqrt(v) + epsilon * root_c2), params, m, v)
        return params, (steps, m, v)

    return (lambda params: (jnp.zeros((), jnp.int32), tree(jnp.zeros_like, params),
                            tree(jnp.zeros_like, params))), adam_step


def make_epoch(step_optimizer, samples, batch_size):
    """One epoch over the permutation `order`: returns the new parameters, optimiser state and mean loss."""
    full = samples // batch_size

    def epoch(params, state, x, y, order):
        def batch(carry, index):
            params, state = carry
            loss, grads = jax.value_and_grad(mean_loss)(params, x[index], y[index])
            params, state = step_optimizer(params, state, grads)
            return (params, state), loss * index.shape[0]

        carry, losses = lax.scan(batch, (params, state), order[:full * batch_size].reshape(full, batch_size))
        total = losses.sum()
        if full * batch_size < samples:  # the last, smaller batch, as the other contenders do
            carry, loss = batch(carry, order[full * batch_size:])
            total = total + loss
        return carry[0], carry[1], total / samples

    return epoch


def kernels(compiled):
    """What XLA made of the epoch's products: dot instructions and the kinds of custom fusions
    (for example __ynn_fusion: YNNPACK) and custom calls in the compiled module."""
    text = compiled.as_text()
    return {"dots": len(re.findall(r"\bdot\(", text)),
            "fusion_kinds": dict(Counter(re.findall(r'"kind":"(__\w+)"', text))),
            "custom_calls": dict(Counter(re.findall(r'custom_call_target="([^"]+)"', text)))}


def describe(compiled):
    """The facts the report shows about this peer."""
    import jaxlib

    from jax.extend import backend as backends

    backend = backends.get_backend()
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": backend.platform,
            "platform_version": backend.platform_version, "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "cores": len(os.sched_getaffinity(0)),
            "process_threads": common.process_threads(), **kernels(compiled)}


def main():
    args = common.train_arguments(__doc__.splitlines()[0]).parse_args()
    task = common.TASKS[args.task]
    rss_start = common.peak_rss_kib()
    x_np, y_np = common.load(args.data, "train")
    x_test_np, y_test_np = common.load(args.data, "t10k")
    x, y = jnp.asarray(x_np), jnp.asarray(y_np.astype(np.int32))
    x_test = jnp.asarray(x_test_np)
    rss_loaded = common.peak_rss_kib()

    rng = np.random.default_rng(args.seed)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in common.initial_layers(task["sizes"], rng)]
    init_state, step_optimizer = make_optimizer(task)
    state = init_state(params)
    n = len(x_np)
    start = time.perf_counter()
    epoch = jax.jit(make_epoch(step_optimizer, n, task["batch_size"]), donate_argnums=(0, 1))
    compiled = epoch.lower(params, state, x, y, jnp.zeros(n, jnp.int32)).compile()
    compile_seconds = time.perf_counter() - start
    seconds, loss = [], float("nan")
    for number in range(args.epochs):
        start = time.perf_counter()
        order = jnp.asarray(rng.permutation(n).astype(np.int32))
        params, state, mean = compiled(params, state, x, y, order)
        loss = float(mean)  # waits for the epoch
        jax.block_until_ready(params)
        seconds.append(time.perf_counter() - start)
        print(f"jax: epoch {number + 1}/{args.epochs}  {seconds[-1]:.3f} s  train loss {loss:.4f}", file=sys.stderr)
    predict = jax.jit(lambda params, x: jnp.argmax(forward(params, x), axis=1))
    accuracy = float((np.asarray(predict(params, x_test)) == y_test_np).mean())
    common.emit({"contender": "jax", "task": args.task, "samples": n,
                 "parameters": sum(w.size + b.size for w, b in params), "epoch_seconds": seconds,
                 "compile_seconds": compile_seconds, "train_loss": loss, "test_accuracy": accuracy,
                 "peak_rss_kib": {"start": rss_start, "loaded": rss_loaded, "end": common.peak_rss_kib()},
                 "kernel": describe(compiled)})


if __name__ == "__main__":
    main()
